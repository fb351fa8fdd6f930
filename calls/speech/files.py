"""File-level helpers behind the speech management commands."""

from __future__ import annotations

import os
from pathlib import Path

from .audio import ENGINE_RATE, read_wav, write_wav
from .base import Speech, Transcript
from .registry import get_stt
from .synthesis import synthesize_with_fallback


def transcribe_file(path: str | os.PathLike[str], model: str | None = None, *, language: str | None = None,
                    beam_size: int = 1) -> Transcript:
    """Transcribe a PCM WAV file (any rate/width/channels). Raises AudioError, SttError."""
    audio = read_wav(path, rate=ENGINE_RATE)
    return get_stt(model).transcribe(audio, language=language, beam_size=beam_size)


def synthesize_to_file(text: str, out_path: str | os.PathLike[str], voice: str | None = None,
                       rate: float | None = None, *, sample_rate: int | None = None) -> Speech:
    """Synthesize `text` to a mono PCM16 WAV (atomically); falls back to espeak-ng like calls do.
    Returns the Speech, whose `engine`/`fallback_reason` say which engine spoke."""
    speech = synthesize_with_fallback(text, voice=voice, rate=rate, sample_rate=sample_rate)
    write_wav(Path(out_path), speech.audio, speech.sample_rate)
    return speech
