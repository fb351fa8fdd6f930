"""Voice session tests: a scripted dialog engine, a phone-like caller and the call plumbing.

Sessions write from their own thread, so every test that runs one uses
`django_db(transaction=True)`. The speech engines are the real ones unless a test asks
for `fake_speech`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from agents.engine import CallContext, DialogEngine, DialogReply
from agents.tests.factories import AgentConfigFactory
from calls.session import MemoryTransport, VoiceSession
from calls.session.simulate import SimulatedCaller


class ScriptedEngine(DialogEngine):
    """Replies from a list, in order; the last one repeats. `delay` makes it slow."""

    def __init__(self, replies: list[str | DialogReply] = (), *, greeting: str = "Hello.", delay: float = 0.0) -> None:
        self.greeting = greeting
        self.replies = list(replies)
        self.delay = delay
        self.heard: list[dict] = []

    def start(self, ctx: CallContext) -> DialogReply:
        return DialogReply([self.greeting], intent="greeting")

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        if text is None and dtmf is None:
            return DialogReply([])  # silence: the session's own reprompt
        self.heard.append({"text": text, "dtmf": dtmf, "history": list(ctx.history)})
        if self.delay:
            time.sleep(self.delay)
        reply = (self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]) if self.replies else "Okay."
        if isinstance(reply, str):
            reply = DialogReply([reply], intent="scripted")
        return reply


@pytest.fixture
def agent(db):
    return AgentConfigFactory(
        greeting="Hello.", closing="Goodbye.", endpointing_silence_ms=300, barge_in_min_ms=200,
        silence_reprompt_seconds=60, silence_hangup_seconds=120, max_call_seconds=120,
    )


@pytest.fixture(scope="session")
def warm_speech():
    """Load Whisper and Piper and cache the fixed phrases once, as a server does at start,
    so no call in these tests waits for a model to load."""
    from agents.models import AgentConfig
    from calls.session import session_warm_up

    session_warm_up(agents=[AgentConfig(greeting="Hello.", closing="Goodbye.")], sample_rates=[8000, 16000])


@pytest.fixture(autouse=True)
def no_postcall_pipeline():
    """Queue the post-call pipeline instead of running it in the session's thread: in embedded
    mode Celery is eager, and the pipeline would transcribe every recording with Whisper base."""
    from voicecrm.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def fake_speech(settings):
    settings.STT_ENGINE = "calls.speech.fake.FakeSttEngine"
    settings.TTS_ENGINE = "calls.speech.fake.FakeTtsEngine"
    yield
    from calls.speech import executor

    executor.shutdown()


@dataclass
class Phone:
    """A session with a simulated caller on a memory transport, running on the test's loop."""

    session: VoiceSession
    transport: MemoryTransport
    caller: SimulatedCaller
    tasks: list = field(default_factory=list)

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self.session.run()), asyncio.create_task(self.caller.run())]

    async def finish(self, timeout: float = 30.0):
        summary = await asyncio.wait_for(self.tasks[0], timeout)
        self.caller.stop()
        await asyncio.wait_for(self.tasks[1], 5)
        return summary

    async def until_event(self, kind: str, *, after: float = 0.0, timeout: float = 20.0, **match) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.transport.events:
                if at >= after and event.get("type") == kind and all(event.get(k) == v for k, v in match.items()):
                    return at, event
            if self.tasks and self.tasks[0].done():
                self.tasks[0].result()
                raise AssertionError(f"the call ended before a {kind} event")
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no {kind} event {match}")

    async def until_listening(self, *, after: float = 0.0, timeout: float = 20.0) -> float:
        """After the agent has spoken (since `after`), when it went back to listening."""
        spoke_at, _ = await self.until_event("state", after=after, timeout=timeout, state="speaking")
        at, _ = await self.until_event("state", after=spoke_at, timeout=timeout, state="listening")
        return at


@pytest.fixture
def phone():
    def make(agent, engine, *, sample_rate: int = 16000, noise_dbfs: float | None = None, **kwargs) -> Phone:
        transport = MemoryTransport(sample_rate)
        session = VoiceSession(agent=agent, transport=transport, engine=engine, **kwargs)
        return Phone(session, transport, SimulatedCaller(session, noise_dbfs=noise_dbfs))

    return make


def play(phone: Phone, scenario) -> SessionSummary:  # noqa: F821
    """Run the call on a fresh event loop: `scenario(phone)` is the caller's side. Returns the
    session's summary once the call is stored; the test then asserts on the database."""

    async def main():
        await phone.start()
        try:
            await scenario(phone)
        finally:
            if not phone.tasks[0].done():
                phone.caller.hang_up()
        return await phone.finish()

    return asyncio.run(main())
