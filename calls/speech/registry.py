"""Engines chosen by dotted path in settings, as Django does with EMAIL_BACKEND.

STT and TTS engines are cached per process (they hold loaded models and are thread-safe).
A VAD holds per-stream state, so `get_vad()` returns a fresh instance for each call;
the expensive part (Silero's ONNX session) is shared inside the VAD module.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import SttEngine, TtsEngine, Vad

_lock = threading.Lock()


@lru_cache(maxsize=8)
def _stt(path: str, model: str | None) -> SttEngine:
    return import_string(path)(model=model)


@lru_cache(maxsize=8)
def _tts(path: str) -> TtsEngine:
    return import_string(path)()


def get_stt(model: str | None = None) -> SttEngine:
    """settings.STT_ENGINE for `model` (default settings.STT_MODEL)."""
    with _lock:
        return _stt(settings.STT_ENGINE, model or settings.STT_MODEL)


def get_tts() -> TtsEngine:
    with _lock:
        return _tts(settings.TTS_ENGINE)


def get_fallback_tts() -> TtsEngine:
    with _lock:
        return _tts(settings.TTS_FALLBACK_ENGINE)


def get_vad(**kwargs) -> Vad:
    """A new settings.VAD_ENGINE instance (kwargs go to its constructor)."""
    return import_string(settings.VAD_ENGINE)(**kwargs)


def clear_caches() -> None:
    """Forget engine instances; loaded models stay cached in their engine modules."""
    _stt.cache_clear()
    _tts.cache_clear()


_ENGINE_SETTINGS = {"STT_ENGINE", "STT_MODEL", "STT_THREADS", "STT_LANGUAGE", "SPEECH_WORKERS", "TTS_ENGINE",
                    "TTS_FALLBACK_ENGINE", "TTS_VOICE"}


@receiver(setting_changed)
def _engine_setting_changed(*, setting: str, **kwargs) -> None:
    # override_settings in tests: engines read these settings when they are built.
    if setting in _ENGINE_SETTINGS:
        clear_caches()
