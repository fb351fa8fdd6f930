"""Speech work runs off the event loop: in the thread pool or on Celery queues."""

import asyncio
import re
import time

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.test import override_settings

from calls.speech import executor
from calls.speech.audio import AudioError
from calls.speech.errors import SttError
from calls.speech.stt import Transcript
from calls.speech.tts import Speech

from .helpers import asterisk_prompt

pytestmark = pytest.mark.slow

PROMPT = "please enter your password followed by the pound key".split()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def max_loop_stall(coro) -> tuple[object, float]:
    """Run `coro` while a 5 ms ticker measures the longest the event loop was blocked."""
    stalls: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        result = await coro
    finally:
        done.set()
        await tick
    return result, max(stalls, default=0.0)


def off_the_loop(stall: float, transcript: Transcript) -> bool:
    """Work run on the loop would stall it for the whole transcription; off the loop, the
    loop only waits for the scheduler. Relative to the work's own time, so a loaded CI box
    (where both grow) does not turn this into a timing test."""
    return stall < max(0.1, 0.5 * transcript.elapsed)


async def test_thread_mode_transcribes_without_blocking_the_loop(whisper):
    whisper.warm_up()
    with override_settings(SPEECH_EXECUTION="thread", STT_MODEL="tiny.en"):
        transcript, stall = await max_loop_stall(executor.run_stt(asterisk_prompt("agent-pass")))
    assert isinstance(transcript, Transcript) and words(transcript.text) == PROMPT
    assert off_the_loop(stall, transcript)


async def test_thread_mode_runs_two_calls_concurrently(whisper):
    audio = asterisk_prompt("agent-pass")
    with override_settings(SPEECH_EXECUTION="thread"):
        results = await asyncio.gather(executor.run_stt(audio), executor.run_tts("One moment please."))
    assert words(results[0].text) == PROMPT
    assert isinstance(results[1], Speech) and results[1].engine == "piper"


async def test_stream_tts_yields_each_sentence():
    with override_settings(SPEECH_EXECUTION="thread"):
        chunks = [c async for c in executor.stream_tts("Hello. How can I help you today?", sample_rate=8000)]
    assert [c.text for c in chunks] == ["Hello.", "How can I help you today?"]
    assert all(c.sample_rate == 8000 and c.audio for c in chunks)


async def test_celery_mode_with_eager_tasks(whisper):
    from voicecrm.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(SPEECH_EXECUTION="celery"):
            transcript, stall = await max_loop_stall(executor.run_stt(asterisk_prompt("agent-pass")))
            speech = await executor.run_tts("Thank you.", sample_rate=16000)
    finally:
        app.conf.task_always_eager = previous
    assert words(transcript.text) == PROMPT and transcript.words and transcript.model == "tiny.en"
    assert off_the_loop(stall, transcript)  # even an eager task runs in a waiter thread
    assert speech.engine == "piper" and speech.sample_rate == 16000 and speech.duration > 0.3


@pytest.fixture
def celery_worker_app(monkeypatch):
    """A real worker thread consuming the stt and tts queues, with an in-memory broker and
    result backend: tasks really go through serialization, queues and the backend."""
    app = Celery("speech-test", set_as_current=False)
    app.conf.update(
        broker_url="memory://",
        result_backend="cache+memory://",
        task_always_eager=False,
        accept_content=["json"],
        task_serializer="json",
        result_serializer="json",
    )
    monkeypatch.setattr(executor, "_celery_app", lambda: app)
    import calls.speech.tasks  # noqa: F401 - shared tasks join every app as it finalizes

    assert executor.TRANSCRIBE_TASK in app.tasks and executor.SYNTHESIZE_TASK in app.tasks
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, queues=["stt", "tts"]):
        yield app


async def test_celery_mode_through_a_worker(celery_worker_app, whisper):
    with override_settings(SPEECH_EXECUTION="celery"):
        (transcript, speech), stall = await max_loop_stall(
            asyncio.gather(
                executor.run_stt(asterisk_prompt("agent-pass")), executor.run_tts("Goodbye.", sample_rate=8000)
            )
        )
    assert words(transcript.text) == PROMPT and transcript.confidence > 0.5
    assert speech.engine == "piper" and speech.sample_rate == 8000 and speech.duration > 0.3
    assert off_the_loop(stall, transcript)


async def test_celery_mode_without_a_worker_times_out_cleanly(monkeypatch):
    app = Celery("speech-test-idle", set_as_current=False)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://", task_always_eager=False)
    import calls.speech.tasks  # noqa: F401

    monkeypatch.setattr(executor, "_celery_app", lambda: app)
    monkeypatch.setattr(executor, "STT_TIMEOUT_S", 0.3)
    with override_settings(SPEECH_EXECUTION="celery"):
        with pytest.raises(SttError) as exc:
            await executor.run_stt(b"\x00\x00" * 1600)
        assert "no stt worker answered" in exc.value.message and not exc.value.permanent
        with pytest.raises(AudioError):
            await executor.run_stt(b"\x00\x00\x00")
