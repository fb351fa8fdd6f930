"""Live calls: heartbeats, admission, the polite drain on shutdown, and a database blip mid-call."""

import asyncio
import time

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from calls.models import Call, Turn
from calls.session import live
from telephony.chat.session import text_session_open

from .conftest import ScriptedEngine, play

pytestmark = pytest.mark.django_db(transaction=True)

SHUTDOWN_SENTENCES = ["I'm sorry, we have to end this call now.", "Please call back in a moment."]


@pytest.fixture(autouse=True)
def fresh_registry():
    live._reset_for_tests()
    yield
    live._reset_for_tests()


def heartbeat_of(call_id: int):
    return Call.objects.values_list("heartbeat_at", flat=True).get(pk=call_id)


async def in_thread(fn, *args):
    """Run ORM code off the event loop, closing the thread's connection after (the test
    database cannot be dropped while a pool thread still holds one)."""
    def run():
        try:
            return fn(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_live_voice_call_beats_and_stops_beating_when_it_ends(agent, phone, fake_speech):
    p = phone(agent, ScriptedEngine())
    seen = {}

    async def scenario(p):
        await p.until_listening()
        call_id = p.session.call.pk
        first = await in_thread(heartbeat_of, call_id)
        assert first is not None  # stamped by call_start
        live.heartbeat_now()
        assert await in_thread(wait_for, lambda: heartbeat_of(call_id) > first)
        assert live.count() == 1
        seen["call_id"] = call_id

    play(p, scenario)
    assert live.count() == 0
    ended = heartbeat_of(seen["call_id"])
    live.heartbeat_now()
    time.sleep(0.3)
    assert heartbeat_of(seen["call_id"]) == ended  # a finished call is not stamped


def test_an_open_text_chat_beats_until_it_is_closed(agent):
    chat = text_session_open(agent_slug=agent.slug, engine=ScriptedEngine())
    first = heartbeat_of(chat.call_id)
    live.heartbeat_now()
    assert wait_for(lambda: heartbeat_of(chat.call_id) > first)
    chat.close()
    assert Call.objects.get(pk=chat.call_id).status == Call.Status.COMPLETED
    assert chat.call_id not in live._beating


def test_admission_stops_at_the_cap_and_while_draining(settings):
    settings.MAX_CALLS_PER_PROCESS = 2
    a, b = object(), object()
    live.register(a)
    assert live.admit()
    live.register(b)
    live.register(b)  # twice is once
    assert live.count() == 2 and not live.admit()
    live.unregister(a)
    assert live.admit()
    assert asyncio.run(live.drain(0.1)) == 1  # `b` cannot end politely: still counted
    assert live.draining() and not live.admit()


def test_drain_ends_each_live_call_politely_and_finalizes_it(agent, phone, fake_speech):
    p = phone(agent, ScriptedEngine(["This answer is cut short by the shutdown of the server, sadly."]))
    result = {}

    async def scenario(p):
        at = await p.until_listening()
        p.session.feed_text("Tell me something long.")
        await p.until_event("agent_text", after=at)
        result["left"] = await live.drain(15.0)

    summary = play(p, scenario)
    assert result["left"] == 0 and live.count() == 0
    said = [e["text"] for e in p.transport.events_of("agent_text")]
    assert said[-2:] == SHUTDOWN_SENTENCES
    assert p.transport.events_of("ended")[-1]["reason"] == "server_shutdown"
    assert summary.finalized and summary.end_reason == "server_shutdown"
    call = Call.objects.get()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "server_shutdown")
    agent_turns = list(Turn.objects.filter(speaker="agent").order_by("index"))
    assert agent_turns[-2].partial or agent_turns[-2].interrupted  # the answer the goodbye cut off
    assert agent_turns[-1].text == " ".join(SHUTDOWN_SENTENCES)


def _terminate_other_backends(spare: int) -> int:
    """What a database restart or failover does to a live call: from another connection, end
    every session on this database (the call's thread, the heartbeat thread) but the test's own."""
    db = django_settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=db["NAME"], autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                            [spare]).fetchall()
    return len(rows)


def test_a_database_blip_mid_call_is_survived_and_the_call_finalized(agent, phone, fake_speech):
    assert django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"  # conftest.py
    with connection.cursor() as cursor:  # the test's own connection, for the assertions below
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    p = phone(agent, ScriptedEngine(["Your order ships tomorrow."]))

    async def scenario(p):
        at = await p.until_listening()
        await asyncio.sleep(1.2)  # the call's connection sits idle, as between two turns
        assert await in_thread(_terminate_other_backends, own_pid) >= 1
        p.session.feed_text("Where is my order?")
        at = await p.until_listening(after=at)
        before = await in_thread(heartbeat_of, p.session.call.pk)
        live.heartbeat_now()
        assert await in_thread(wait_for, lambda: heartbeat_of(p.session.call.pk) > before)

    summary = play(p, scenario)
    assert summary.finalized
    call = Call.objects.get()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "caller_hangup")
    assert list(Turn.objects.order_by("index").values_list("speaker", "text")) == [
        ("agent", "Hello."), ("caller", "Where is my order?"), ("agent", "Your order ships tomorrow."),
    ]
    assert summary.stats.errors == 0
