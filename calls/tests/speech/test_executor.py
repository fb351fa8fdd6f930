"""Speech work runs off the event loop: in the thread pool or on Celery queues."""

import asyncio
import re
import threading

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.test import override_settings

from calls.speech import executor
from calls.speech.audio import AudioError
from calls.speech.errors import SttError
from calls.speech.registry import get_stt
from calls.speech.stt import Transcript
from calls.speech.tts import Speech

from .helpers import asterisk_prompt

pytestmark = pytest.mark.slow

PROMPT = "please enter your password followed by the pound key".split()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class LoopWatch:
    """Shows by ordering, not by timing, that transcription runs off the event loop.

    The engine's transcribe, once started, waits until the loop has run another coroutine.
    Off the loop that happens at once; on the loop it cannot happen (the loop is the thread
    waiting), so the wait gives up and records False. A loaded machine only makes both
    slower, never one into the other (wall-time bounds did: bench/ measures speed)."""

    def __init__(self, engine, monkeypatch) -> None:
        self.started = threading.Event()
        self.loop_ran = threading.Event()
        self.beside_the_loop: list[bool] = []
        transcribe = engine.transcribe

        def watched(*args, **kwargs):
            self.started.set()
            self.beside_the_loop.append(self.loop_ran.wait(timeout=10))
            return transcribe(*args, **kwargs)

        monkeypatch.setattr(engine, "transcribe", watched)

    async def run(self, coro):
        async def meanwhile() -> None:
            while not self.started.is_set():
                await asyncio.sleep(0.01)
            self.loop_ran.set()

        side = asyncio.create_task(meanwhile())
        try:
            return await coro
        finally:
            side.cancel()


@pytest.fixture
def loop_watch(monkeypatch):
    """Watches the engine the executor will use (settings.STT_ENGINE for the default model)."""
    return LoopWatch(get_stt(), monkeypatch)


async def test_thread_mode_transcribes_without_blocking_the_loop(whisper, loop_watch):
    with override_settings(SPEECH_EXECUTION="thread"):
        transcript = await loop_watch.run(executor.run_stt(asterisk_prompt("agent-pass")))
    assert isinstance(transcript, Transcript) and words(transcript.text) == PROMPT
    assert loop_watch.beside_the_loop == [True]


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


async def test_celery_mode_with_eager_tasks(whisper, loop_watch):
    from voicecrm.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(SPEECH_EXECUTION="celery"):
            transcript = await loop_watch.run(executor.run_stt(asterisk_prompt("agent-pass")))
            speech = await executor.run_tts("Thank you.", sample_rate=16000)
    finally:
        app.conf.task_always_eager = previous
    assert words(transcript.text) == PROMPT and transcript.words and transcript.model == "tiny.en"
    assert loop_watch.beside_the_loop == [True]  # even an eager task runs in a waiter thread
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


async def test_celery_mode_through_a_worker(celery_worker_app, whisper, loop_watch):
    with override_settings(SPEECH_EXECUTION="celery"):
        transcript, speech = await loop_watch.run(
            asyncio.gather(
                executor.run_stt(asterisk_prompt("agent-pass")), executor.run_tts("Goodbye.", sample_rate=8000)
            )
        )
    assert words(transcript.text) == PROMPT and transcript.confidence > 0.5
    assert speech.engine == "piper" and speech.sample_rate == 8000 and speech.duration > 0.3
    assert loop_watch.beside_the_loop == [True]


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
