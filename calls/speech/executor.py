"""Run speech CPU work off the event loop.

SPEECH_EXECUTION="thread": a process-wide pool of SPEECH_WORKERS threads. CTranslate2
and onnxruntime release the GIL while they compute, so threads give real parallelism.
SPEECH_EXECUTION="celery": Celery tasks on the "stt"/"tts" queues, so transcription
scales out to other machines; needs a result backend (see docs/speech.md).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from celery import current_app
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import EagerResult
from django.conf import settings

from core.text import split_sentences

from . import tasks  # noqa: F401  (registers the speech tasks with the Celery app)
from .audio import AudioError
from .base import Speech, Transcript
from .errors import SpeechError, SttError, TtsError
from .registry import get_stt
from .synthesis import synthesize_with_fallback

T = TypeVar("T")

TRANSCRIBE_TASK = "calls.speech.tasks.speech_transcribe_task"
SYNTHESIZE_TASK = "calls.speech.tasks.speech_synthesize_task"
STT_TIMEOUT_S = 30.0
TTS_TIMEOUT_S = 30.0

_lock = threading.Lock()
_cpu_pool: ThreadPoolExecutor | None = None
_wait_pool: ThreadPoolExecutor | None = None


def cpu_pool() -> ThreadPoolExecutor:
    global _cpu_pool
    with _lock:
        if _cpu_pool is None:
            _cpu_pool = ThreadPoolExecutor(max_workers=settings.SPEECH_WORKERS, thread_name_prefix="speech")
        return _cpu_pool


def _waiters() -> ThreadPoolExecutor:
    # Threads that only block on the broker/result backend: cheap, so many, and separate
    # from the CPU pool so waiting on Celery never starves local speech work.
    global _wait_pool
    with _lock:
        if _wait_pool is None:
            _wait_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="speech-wait")
        return _wait_pool


def shutdown() -> None:
    """Stop the pools (tests, process exit); they are recreated on next use."""
    global _cpu_pool, _wait_pool
    with _lock:
        pools, _cpu_pool, _wait_pool = (_cpu_pool, _wait_pool), None, None
    for pool in pools:
        if pool is not None:
            pool.shutdown(wait=True)


async def run_cpu(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run any blocking speech function in the speech thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(cpu_pool(), partial(fn, *args, **kwargs))


def _celery_app():  # -> celery.Celery
    return current_app._get_current_object()


def _send_and_wait(task_name: str, kwargs: dict, queue: str, timeout: float) -> dict:
    # In eager mode apply_async runs the task right here, which is why even sending
    # happens in a waiter thread and not on the event loop.
    result = _celery_app().tasks[task_name].apply_async(kwargs=kwargs, queue=queue)
    try:
        return result.get(timeout=timeout, disable_sync_subtasks=False)
    finally:
        if not isinstance(result, EagerResult):
            # Read once: don't leave every turn's audio in Redis until result_expires.
            try:
                result.forget()
            except Exception:  # noqa: BLE001 - cleanup only; the result was already read
                pass


async def _via_celery(task_name: str, kwargs: dict, queue: str, timeout: float, error: type[SpeechError]) -> dict:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_waiters(), _send_and_wait, task_name, kwargs, queue, timeout)
    except SpeechError:
        raise
    except CeleryTimeoutError as exc:
        raise error(f"no {queue} worker answered within {timeout:.0f}s") from exc
    except Exception as exc:  # a broker outage, or the task's own error rebuilt from JSON
        raise error(f"{queue} task failed: {type(exc).__name__}: {exc}") from exc


async def run_stt(audio: bytes, *, model: str | None = None, language: str | None = None,
                  beam_size: int = 1, word_timestamps: bool = True, live: bool = False) -> Transcript:
    """Transcribe PCM16 mono 16 kHz without blocking the event loop. `live=True` is a caller's
    turn in a call: the engine's fast path (`transcribe_live`), beam and word timings ignored."""
    if settings.SPEECH_EXECUTION == "celery":
        if not isinstance(audio, (bytes, bytearray, memoryview)) or len(audio) % 2:
            raise AudioError("STT audio must be PCM16 bytes")  # fail here, not after a broker round trip
        kwargs = {"audio_b64": base64.b64encode(audio).decode("ascii"), "model": model, "language": language,
                  "beam_size": beam_size, "word_timestamps": word_timestamps}
        if live:
            kwargs["live"] = True
        return Transcript.from_dict(await _via_celery(TRANSCRIBE_TASK, kwargs, "stt", STT_TIMEOUT_S, SttError))
    engine = get_stt(model)
    if live:
        return await run_cpu(engine.transcribe_live, audio, language=language)
    return await run_cpu(engine.transcribe, audio, language=language, beam_size=beam_size,
                         word_timestamps=word_timestamps)


async def run_tts(text: str, *, voice: str | None = None, rate: float | None = None,
                  sample_rate: int | None = None) -> Speech:
    """Synthesize (with the fallback engine if the primary fails) without blocking the loop."""
    if settings.SPEECH_EXECUTION == "celery":
        kwargs = {"text": text, "voice": voice, "rate": rate, "sample_rate": sample_rate}
        data = await _via_celery(SYNTHESIZE_TASK, kwargs, "tts", TTS_TIMEOUT_S, TtsError)
        return Speech(base64.b64decode(data["audio_b64"]), data["sample_rate"], data["engine"], data["text"],
                      data["fallback_reason"])
    return await run_cpu(synthesize_with_fallback, text, voice=voice, rate=rate, sample_rate=sample_rate)


async def stream_tts(text: str, *, voice: str | None = None, rate: float | None = None,
                     sample_rate: int | None = None) -> AsyncIterator[Speech]:
    """Sentence by sentence; sentence n+1 is already being synthesized while the caller
    plays sentence n. Closing the iterator early (barge-in) abandons the prefetch."""
    sentences = split_sentences(text)
    if not sentences:
        return

    def start(sentence: str) -> asyncio.Future[Speech]:
        return asyncio.ensure_future(run_tts(sentence, voice=voice, rate=rate, sample_rate=sample_rate))

    pending: asyncio.Future[Speech] | None = start(sentences[0])
    try:
        for following in [*sentences[1:], None]:
            speech = await pending
            pending = start(following) if following is not None else None
            yield speech
    finally:
        if pending is not None:
            pending.cancel()
