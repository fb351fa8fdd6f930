"""Fixtures of the FastAGI and ARI tests (imported by those modules, not a conftest, so the
AudioSocket tests beside them keep their own).

The FastAGI server runs for real in a thread with its own event loop, as `run_fastagi` runs it,
driven from blocking sockets the way Asterisk's AGI() drives it (tests/pbx.py). Its database
threads use their own connections, so these tests need `django_db(transaction=True)`."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents.tests.factories import AgentConfigFactory
from telephony.asterisk.fastagi import FastAgiServer
from telephony.models import Route

__all__ = ["LiveFastAgi", "agent", "extension", "fastagi", "queued_pipeline"]


class LiveFastAgi:
    def __init__(self, **options) -> None:
        self.server = FastAgiServer(host="127.0.0.1", port=0, **options)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fastagi-test", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> LiveFastAgi:
        self._thread.start()
        assert self._ready.wait(10), "the FastAGI server did not start"
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self):
        return self.server.stats

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(grace=5), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def fastagi():
    live = LiveFastAgi(timeout=2.0).start()
    yield live
    live.stop()


@pytest.fixture
def queued_pipeline():
    """Keep the post-call pipeline queued: calls end here, their analysis is not under test."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def agent(transactional_db):
    return AgentConfigFactory(slug="front-desk", name="Front desk", transfer_target="+14155550100",
                              retry_attempts=1, retry_spacing_minutes=15)


@pytest.fixture
def extension(agent):
    return Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7000", agent=agent)
