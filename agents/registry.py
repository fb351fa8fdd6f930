"""Dialog engines by dotted path in settings.DIALOG_ENGINE (a class or a factory), as Django does
with EMAIL_BACKEND; the engines import only agents/engine.py, never this module."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from agents.deterministic import DeterministicEngine
from agents.engine import DialogEngine
from agents.llm import LLMEngine


def default_dialog_engine() -> DialogEngine:
    """The default DIALOG_ENGINE: with LLM_BASE_URL set, the LLM engine with the deterministic
    engine as its fallback (for the greeting, and whenever the LLM fails); otherwise the
    deterministic engine alone."""
    if settings.LLM_BASE_URL:
        return LLMEngine(fallback=DeterministicEngine())
    return DeterministicEngine()


@lru_cache(maxsize=4)
def _engine(path: str) -> DialogEngine:
    return import_string(path)()


def get_dialog_engine() -> DialogEngine:
    """The engine named by settings.DIALOG_ENGINE (a class or a factory), built once per process.
    Engines are stateless and shared between calls."""
    return _engine(settings.DIALOG_ENGINE)


get_dialog_engine.cache_clear = _engine.cache_clear  # for tests that change settings
