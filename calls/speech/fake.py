"""Fake engines for fast unit tests of the code *around* speech (sessions, consumers).

Like Django's locmem email backend: deterministic, instant, and they record what they
were asked. Behaviour users depend on is tested with the real engines as well.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from core.text import split_sentences

from .audio import ENGINE_RATE, check_rate, duration_s, pcm16_to_array
from .base import Speech, SttEngine, Transcript, TtsEngine, Word


class FakeSttEngine(SttEngine):
    """Returns `text` (or the next of `texts`) for any non-silent audio and records each call."""

    name = "fake"

    def __init__(self, model: str | None = None, *, text: str = "hello", texts: list[str] | None = None,
                 confidence: float = 0.9) -> None:
        self.model = model or "fake"
        self.text = text
        self.texts = list(texts or [])
        self.confidence = confidence
        self.calls: list[dict] = []

    def transcribe(self, audio: bytes, *, language: str | None = None, beam_size: int = 1,
                   word_timestamps: bool = True) -> Transcript:
        samples = pcm16_to_array(audio)
        self.calls.append({"audio": audio, "language": language, "beam_size": beam_size,
                           "word_timestamps": word_timestamps})
        duration = duration_s(audio, ENGINE_RATE)
        if samples.size == 0 or not np.any(samples):
            return Transcript(text="", language=language or "en", duration=duration, model=self.model)
        text = self.texts.pop(0) if self.texts else self.text
        tokens = text.split()
        step = duration / max(1, len(tokens))
        words = [Word(t, round(i * step, 3), round((i + 1) * step, 3), self.confidence) for i, t in enumerate(tokens)]
        return Transcript(text=text, confidence=self.confidence, words=words if word_timestamps else [],
                          language=language or "en", duration=duration, model=self.model)


class FakeTtsEngine(TtsEngine):
    """A 440 Hz tone, 60 ms per character, so audio length is proportional to the text."""

    name = "fake"
    MS_PER_CHAR = 60

    def __init__(self, voice: str | None = None, *, tone: bool = True) -> None:
        self.voice = voice or "fake"
        self.tone = tone
        self.calls: list[str] = []

    def native_rate(self, voice: str | None = None) -> int:
        return ENGINE_RATE

    def stream(self, text: str, *, voice: str | None = None, rate: float | None = None,
               sample_rate: int | None = None) -> Iterator[Speech]:
        self.calls.append(text)
        out_rate = check_rate(sample_rate or ENGINE_RATE)
        for sentence in split_sentences(text):
            n = out_rate * self.MS_PER_CHAR * len(sentence) // 1000 / (rate or 1.0)
            t = np.arange(int(n)) / out_rate
            wave = 0.3 * np.sin(2 * math.pi * 440 * t) if self.tone else np.zeros_like(t)
            yield Speech((wave * 32767).astype("<i2").tobytes(), out_rate, self.name, sentence)
