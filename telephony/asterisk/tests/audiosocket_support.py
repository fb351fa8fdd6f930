"""Fixtures and helpers of the AudioSocket server tests. The test modules import the fixtures
(named `*_fixture` here, so the import does not shadow the test's argument)."""

from __future__ import annotations

import asyncio
import re

import pytest
from rapidfuzz.distance import Levenshtein

from agents.tests.factories import AgentConfigFactory
from calls.models import Call
from calls.services import call_start
from calls.speech.audio import resample
from calls.tests.speech.helpers import whisper_engine
from telephony.asterisk.server import AudioSocketServer
from telephony.models import Route

EXTENSION = "7001"


@pytest.fixture(scope="session", name="warm_speech")
def warm_speech_fixture():
    """Whisper, Piper and the fixed phrases loaded once, as `run_audiosocket` does at start."""
    from agents.models import AgentConfig
    from calls.session import session_warm_up

    session_warm_up(agents=[AgentConfig(greeting="Thanks for calling. How can I help?", closing="Goodbye.")],
                    sample_rates=[8000, 16000])


@pytest.fixture(name="queued_pipeline")
def queued_pipeline_fixture():
    """The post-call pipeline stays queued: run eagerly it would transcribe every recording."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture(name="agent")
def agent_fixture(db):
    return AgentConfigFactory(
        name="Dispatch", greeting="Thanks for calling. How can I help?", closing="Goodbye.",
        endpointing_silence_ms=300, barge_in_min_ms=200, silence_reprompt_seconds=60, silence_hangup_seconds=120,
        max_call_seconds=120,
    )


@pytest.fixture(name="route")
def route_fixture(agent):
    return Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address=EXTENSION, agent=agent)


def prepared_call(agent, *, from_number: str = "+14155550111", direction: str = Call.Direction.INBOUND,
                  channel: str = Call.Channel.ASTERISK, provider_call_id: str = "1733040000.42") -> Call:
    """A call as FastAGI (or ARI) leaves it: created, not answered; its public_id goes to AudioSocket."""
    return call_start(channel=channel, agent=agent, direction=direction, from_number=from_number,
                      to_number=EXTENSION, provider_call_id=provider_call_id, answered=False)


def serve(scenario, *, engine=None, timeout: float = 120.0):
    """Run `await scenario(server)` against a real AudioSocketServer on a free port of 127.0.0.1,
    on a fresh event loop; returns its result once every connection's call has been stored."""

    async def main():
        server = AudioSocketServer(host="127.0.0.1", port=0, engine=engine)
        await server.start()
        try:
            return await asyncio.wait_for(scenario(server), timeout)
        finally:
            await server.close(timeout=30.0)

    return asyncio.run(main())


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


# Whisper tiny.en's int8 kernels differ a little by CPU: a turn must hold the utterance, not each
# exact word (bench/stt_wer.py measures accuracy).
MAX_WER = 1 / 3


def wer(reference: str, hypothesis: str) -> float:
    ref = words(reference)
    return Levenshtein.distance(ref, words(hypothesis)) / len(ref)


def transcribe(pcm: bytes, rate: int) -> str:
    return whisper_engine().transcribe(resample(pcm, rate, 16000)).text
