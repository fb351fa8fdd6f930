"""Celery entry points for SPEECH_EXECUTION="celery": STT on queue "stt", TTS on "tts".

Audio crosses the broker as base64 inside JSON (the default serializer); results come
back the same way, so the result backend never sees pickles. calls.speech.executor sends
them with an explicit queue; other senders should rely on CELERY_TASK_ROUTES.
"""

from __future__ import annotations

import base64

from celery import shared_task

from .registry import get_stt
from .synthesis import synthesize_with_fallback


@shared_task(acks_late=False)
def speech_transcribe_task(audio_b64: str, model: str | None = None, language: str | None = None,
                           beam_size: int = 1, word_timestamps: bool = True, live: bool = False) -> dict:
    # acks_late off: a live turn is worthless after a redelivery minutes later.
    audio = base64.b64decode(audio_b64)
    engine = get_stt(model)
    if live:
        return engine.transcribe_live(audio, language=language).to_dict()
    transcript = engine.transcribe(audio, language=language, beam_size=beam_size, word_timestamps=word_timestamps)
    return transcript.to_dict()


@shared_task(acks_late=False)
def speech_synthesize_task(text: str, voice: str | None = None, rate: float | None = None,
                           sample_rate: int | None = None) -> dict:
    speech = synthesize_with_fallback(text, voice=voice, rate=rate, sample_rate=sample_rate)
    return {
        "audio_b64": base64.b64encode(speech.audio).decode("ascii"),
        "sample_rate": speech.sample_rate,
        "engine": speech.engine,
        "text": speech.text,
        "fallback_reason": speech.fallback_reason,
    }
