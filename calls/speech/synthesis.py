"""Synthesis with the configured engines: the fallback chain and the cache of fixed phrases.

Above the engines: it picks them through the registry, so engine modules never import it back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from core.text import split_sentences

from .audio import AudioError, atomic_write, check_rate, read_wav_info, wav_bytes
from .base import Speech, TtsEngine
from .errors import TtsError
from .registry import get_fallback_tts, get_tts

logger = logging.getLogger(__name__)


def _engines() -> tuple[TtsEngine, TtsEngine]:
    return get_tts(), get_fallback_tts()


def synthesize_with_fallback(text: str, *, voice: str | None = None, rate: float | None = None,
                             sample_rate: int | None = None) -> Speech:
    """Synthesize with TTS_ENGINE; on TtsError use TTS_FALLBACK_ENGINE (with its own default
    voice). The returned Speech names the engine used and carries `fallback_reason`."""
    primary, fallback = _engines()
    try:
        return primary.synthesize(text, voice=voice, rate=rate, sample_rate=sample_rate)
    except TtsError as exc:
        logger.warning("TTS engine %s failed, falling back to %s: %s", primary.name, fallback.name, exc.message)
        speech = fallback.synthesize(text, rate=rate, sample_rate=sample_rate)
        return replace(speech, fallback_reason=exc.message)


def stream_with_fallback(text: str, *, voice: str | None = None, rate: float | None = None,
                         sample_rate: int | None = None) -> Iterator[Speech]:
    """Like `stream`, sentence by sentence; a sentence the primary engine fails on is spoken
    by the fallback engine, and the rest of the reply stays on the fallback."""
    primary, fallback = _engines()
    reason: str | None = None
    for sentence in split_sentences(text):
        if reason is None:
            try:
                yield from primary.stream(sentence, voice=voice, rate=rate, sample_rate=sample_rate)
                continue
            except TtsError as exc:
                reason = exc.message
                logger.warning("TTS engine %s failed, falling back to %s: %s", primary.name, fallback.name, reason)
        for chunk in fallback.stream(sentence, rate=rate, sample_rate=sample_rate):
            yield replace(chunk, fallback_reason=reason)


# --- Phrase cache --------------------------------------------------------------------------------------

class PhraseCache:
    """Fixed phrases (greeting, fillers, goodbye) synthesized once, kept in memory and on disk.

    Disk entries live under SPEECH_CACHE_DIR/phrases/<sha256>.wav, keyed by engine, voice,
    speaking rate, text and sample rate, and are written atomically, so several workers can
    share the directory. `synthesized` counts real synthesis calls (cache misses).
    """

    def __init__(self, engine: TtsEngine | None = None, *, cache_dir: Path | None = None,
                 sample_rate: int = 16000) -> None:
        if engine is None:
            engine = get_tts()
        if cache_dir is None:
            cache_dir = Path(settings.SPEECH_CACHE_DIR)
        self.engine = engine
        self.dir = Path(cache_dir) / "phrases"
        self.sample_rate = check_rate(sample_rate)
        self._memory: dict[str, Speech] = {}
        self._lock = threading.Lock()
        self.synthesized = 0

    def key(self, text: str, *, voice: str | None = None, rate: float | None = None) -> str:
        parts = [self.engine.name, self.engine.voice_id(voice), rate or 1.0, text, self.sample_rate]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()

    def cached(self, text: str, *, voice: str | None = None, rate: float | None = None) -> Speech | None:
        """The phrase if it is already in memory, else None. Never synthesizes or reads the disk,
        so an event loop may call it directly and send only misses to a worker thread."""
        return self._memory.get(self.key(text, voice=voice, rate=rate))

    def get(self, text: str, *, voice: str | None = None, rate: float | None = None) -> Speech:
        key = self.key(text, voice=voice, rate=rate)
        speech = self._memory.get(key)
        if speech is not None:
            return speech
        with self._lock:  # one synthesis per phrase even when several calls ask at once
            speech = self._memory.get(key) or self._from_disk(key, text)
            if speech is None:
                speech = self.engine.synthesize(text, voice=voice, rate=rate, sample_rate=self.sample_rate)
                self.synthesized += 1
                atomic_write(self.dir / f"{key}.wav", wav_bytes(speech.audio, speech.sample_rate))
            self._memory[key] = speech
            return speech

    def _from_disk(self, key: str, text: str) -> Speech | None:
        path = self.dir / f"{key}.wav"
        if not path.is_file():
            return None
        try:
            pcm, rate = read_wav_info(path)
        except AudioError:
            logger.warning("ignoring unreadable cached phrase %s", path)
            return None
        if rate != self.sample_rate:
            return None
        return Speech(pcm, rate, self.engine.name, text)

    def warm(self, phrases: list[str], **kwargs) -> None:
        for phrase in phrases:
            self.get(phrase, **kwargs)
