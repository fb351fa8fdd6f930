"""One client cannot hurt the others: floods, stalls, spoofed headers, a busy process, Redis down.

Against the real voice session with the fake speech engines (as test_protocol.py); the Redis
tests run a private redis-server of their own and stop it on purpose.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from pathlib import Path

import pytest
import redis
from django.test import RequestFactory, override_settings

from calls.models import Call, CallEvent, Turn
from calls.session import live
from calls.tests.postcall.harness import RedisServer
from core.proxies import ForwardedHeadersMiddleware, client_address
from telephony.browser import widget

from .conftest import communicator, random_ip
from .test_protocol import QUESTION, Client, fake_speech  # noqa: F401 - fake_speech is a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fake_speech", "no_live_calls"),
]

ROOT = Path(__file__).resolve().parents[3]
PROXY = "172.28.0.10"


@pytest.fixture
def no_live_calls():
    live._reset_for_tests()
    yield
    live._reset_for_tests()


@pytest.fixture
def short_greeting(agent):
    agent.greeting = "Hi."
    agent.save()
    return agent


async def first_close(comm, *, timeout: float = 5.0) -> int | None:
    """The close code the server sends first, skipping everything else (None: still open)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await comm.receive_nothing(timeout=0.05, interval=0.01):
            continue
        message = await comm.receive_output()
        if message["type"] == "websocket.close":
            return message.get("code", 1000)
    return None


async def refused_with(comm) -> int | None:
    connected, _ = await comm.connect()
    assert connected
    return await first_close(comm, timeout=3)


# --- Flooding -------------------------------------------------------------------------------------

async def test_a_message_flood_is_dropped_then_closed_and_other_callers_are_served(short_greeting, route):
    flooder = Client(communicator())
    ready = await flooder.start()
    await flooder.until(lambda e: e["type"] == "state" and e["state"] == "listening")
    # What one anonymous socket sent: 300 typed turns and 100 keypad messages at once.
    for i in range(300):
        await flooder.send({"type": "text", "text": f"{QUESTION} {i}"})
    for _ in range(100):
        await flooder.send({"type": "dtmf", "digits": "1#"})
    caller = Client(communicator())
    began = time.monotonic()
    await caller.start()
    await caller.until(lambda e: e["type"] == "agent_text" and e["turn"] == 0)
    assert time.monotonic() - began < 3.0  # the greeting of another caller is not held up

    await flooder.until(lambda e: e["type"] == "websocket.close", timeout=10)
    assert flooder.close_code == widget.CLOSE_RATE_LIMITED
    await flooder.comm.disconnect(timeout=20)
    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.status == Call.Status.COMPLETED and call.end_reason == "flooding"
    caller_turns = await Turn.objects.filter(call=call, speaker=Turn.Speaker.CALLER).acount()
    assert caller_turns <= 20 + 2  # one burst (WIDGET_MESSAGE_BURST) at most, not 400
    dropped = await CallEvent.objects.aget(call=call, name="widget_dropped_input")
    assert dropped.payload["over_rate"] >= 20
    await caller.hang_up()


@override_settings(WIDGET_MESSAGES_PER_SECOND=5, WIDGET_MESSAGE_BURST=5)
async def test_messages_within_the_rate_are_all_handled(short_greeting, route):
    client = Client(communicator())
    await client.start()
    for _ in range(12):  # 12 digits over ~3 s: under 5 a second, never dropped
        await client.send({"type": "dtmf", "digits": "1"})
        await asyncio.sleep(0.25)
    await client.hang_up()
    call = await Call.objects.alatest("created_at")
    assert await CallEvent.objects.filter(call=call, kind=CallEvent.Kind.DTMF).acount() == 12
    assert not await CallEvent.objects.filter(call=call, name="widget_dropped_input").aexists()


async def test_audio_faster_than_real_time_is_dropped_then_closed(short_greeting, route):
    client = Client(communicator())
    ready = await client.start()
    frame = bytes(widget.ENGINE_FRAME_BYTES)
    for _ in range(400):  # 8 s of audio in a burst; 2 s of burst and 2x real time are allowed
        await client.comm.send_to(bytes_data=frame)
    await client.until(lambda e: e["type"] == "websocket.close", timeout=10)
    assert client.close_code == widget.CLOSE_RATE_LIMITED
    await client.comm.disconnect(timeout=20)
    call = await Call.objects.aget(public_id=ready["call_id"])
    dropped = await CallEvent.objects.aget(call=call, name="widget_dropped_input")
    assert dropped.payload["over_rate"] > 0 and dropped.payload["audio_frames_in"] <= 110


@override_settings(WIDGET_INBOUND_QUEUE=10)
async def test_a_full_inbox_closes_the_socket(short_greeting, route, monkeypatch):
    # While the call is being created (here: a database that takes 0.5 s), input waits in the
    # consumer's inbox; daphne would otherwise queue it without limit.
    create = widget.widget_call_start

    def slow_call_start(**kwargs):
        time.sleep(0.5)
        return create(**kwargs)

    monkeypatch.setattr(widget, "widget_call_start", slow_call_start)
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data=json.dumps({"type": "start", "sample_rate": 16000}))
    for _ in range(30):
        await comm.send_to(bytes_data=bytes(widget.ENGINE_FRAME_BYTES))
    assert await first_close(comm) == widget.CLOSE_RATE_LIMITED
    await comm.disconnect(timeout=20)
    call = await Call.objects.alatest("created_at")  # created, then ended and stored like any call
    assert call.status == Call.Status.COMPLETED


# --- Deadlines: start, and idle time that only valid input resets ------------------------------------

@override_settings(WIDGET_START_TIMEOUT_SECONDS=1)
async def test_a_socket_that_never_starts_is_closed(route):
    comm = communicator()
    await comm.connect()
    began = time.monotonic()
    for _ in range(15):  # audio before start is dropped: it does not keep the socket open
        await comm.send_to(bytes_data=bytes(widget.ENGINE_FRAME_BYTES))
        await asyncio.sleep(0.1)
    assert await first_close(comm) == widget.CLOSE_IDLE
    assert time.monotonic() - began < 3.0
    assert not await Call.objects.aexists()


@override_settings(WIDGET_IDLE_TIMEOUT_SECONDS=2)
async def test_garbage_does_not_keep_a_call_alive(short_greeting, route):
    client = Client(communicator())
    ready = await client.start()
    began = time.monotonic()
    while time.monotonic() - began < 4 and client.close_code is None:
        await client.send("{not json")
        await client.comm.send_to(bytes_data=b"\x00" * 641)  # odd length: dropped
        try:
            await client.until(lambda e: e["type"] == "websocket.close", timeout=0.2)
        except AssertionError:
            pass
    assert client.close_code == widget.CLOSE_IDLE
    await client.comm.disconnect(timeout=20)
    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.end_reason == "idle_timeout"


@override_settings(WIDGET_IDLE_TIMEOUT_SECONDS=2)
async def test_valid_audio_keeps_a_call_alive(short_greeting, route):
    client = Client(communicator())
    await client.start()
    began = time.monotonic()
    while time.monotonic() - began < 3.5:  # longer than the idle timeout
        await client.comm.send_to(bytes_data=bytes(widget.ENGINE_FRAME_BYTES))
        with pytest.raises(AssertionError, match="timed out"):
            await client.until(lambda e: False, timeout=0.1)
    assert client.close_code is None
    await client.hang_up()


# --- The per-process cap on live calls -------------------------------------------------------------

@override_settings(MAX_CALLS_PER_PROCESS=1)
async def test_calls_beyond_the_process_cap_are_refused_with_4503(short_greeting, route):
    first = Client(communicator())
    await first.start()
    assert live.count() == 1
    assert await refused_with(communicator()) == widget.CLOSE_BUSY
    await first.hang_up()
    assert live.count() == 0
    second = Client(communicator())
    await second.start()  # the slot is free again
    await second.hang_up()


@override_settings(MAX_CALLS_PER_PROCESS=1)
async def test_two_sockets_racing_for_the_last_slot_get_one_call(short_greeting, route):
    clients = [Client(communicator()), Client(communicator())]
    for client in clients:  # both connected while the slot was free
        connected, _ = await client.comm.connect()
        assert connected
    for client in clients:
        await client.send({"type": "start", "sample_rate": 24000})
    outcomes = [await client.until(lambda e: e["type"] in ("ready", "websocket.close")) for client in clients]
    assert sorted(str(o and o["type"]) for o in outcomes) == ["None", "ready"]
    assert [c.close_code for c in clients].count(widget.CLOSE_BUSY) == 1
    assert await Call.objects.acount() == 1
    await next(c for c, o in zip(clients, outcomes, strict=True) if o).hang_up()


async def test_a_draining_process_refuses_new_calls(route):
    await live.drain(0.1)
    assert live.draining()
    assert await refused_with(communicator()) == widget.CLOSE_BUSY


# --- Redis down, and one Redis pool per process -------------------------------------------------------

@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    layer = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [server.url]}}
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url,
             "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}
    try:
        with override_settings(CACHES={"default": cache}, CHANNEL_LAYERS={"default": layer}):
            yield server
    finally:
        server.stop()


def redis_clients(server: RedisServer) -> int:
    """Connections the Redis server holds, not counting the one asking."""
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        return len(client.client_list()) - 1


async def test_many_sockets_hold_a_few_redis_connections(route, private_redis):
    before = redis_clients(private_redis)
    # Each socket used to get a cache backend of its own (Django's are per async context), with
    # its own pool, left in reference cycles: its connection was released by the cyclic garbage
    # collector, if ever (204 connections after 200 sockets). With the collector off, as between
    # its rare full passes, only what the code closes itself is closed.
    gc.disable()
    try:
        for i in range(200):
            if i % 2:  # refused ones too: an unknown key
                comm = communicator("/ws/voice/no-such-key/")
                assert await refused_with(comm) == widget.CLOSE_FORBIDDEN
            else:
                comm = communicator()
                connected, _ = await comm.connect()
                assert connected
            await comm.disconnect()
        held = redis_clients(private_redis) - before
    finally:
        gc.enable()
    # One pool for the process, used from worker threads: at most one connection per thread.
    assert held <= 8


async def test_with_redis_down_new_sockets_are_refused_with_4503_and_calls_go_on(
    short_greeting, route, private_redis, caplog,
):
    client = Client(communicator())
    ready = await client.start()
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening")
    private_redis.stop()
    with caplog.at_level(logging.ERROR, logger="telephony.browser.consumers"):
        assert await refused_with(communicator()) == widget.CLOSE_BUSY  # not a bare 500
    assert "cache unavailable" in caplog.text
    # The call that was already running needs no Redis: it goes on and is stored.
    await client.send({"type": "text", "text": QUESTION})
    await client.until(lambda e: e["type"] == "agent_text" and e["turn"] == 1, timeout=15)
    await client.hang_up()
    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"


# --- Forwarding headers only from trusted proxies --------------------------------------------------

@pytest.mark.parametrize("peer, forwarded, expected", [
    ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # not a proxy of ours: the header is ignored
    (PROXY, ["198.51.100.1"], "198.51.100.1"),
    (PROXY, ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client wrote 6.6.6.6 itself
    (PROXY, ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two header lines read as one list
    (PROXY, ["198.51.100.1, 172.28.0.11"], "198.51.100.1"),  # two trusted hops (a CIDR)
    (PROXY, ["172.28.0.11"], "172.28.0.11"),  # only proxies: the left-most
    (PROXY, ["198.51.100.1, garbage"], PROXY),  # unreadable: the last hop that vouched
    (PROXY, [], PROXY),
    (PROXY, ["[2001:db8::1]:4711"], "2001:db8::1"),
    (f"::ffff:{PROXY}", ["198.51.100.1:1234"], "198.51.100.1"),
])
def test_client_address_is_the_right_most_untrusted_hop(peer, forwarded, expected):
    with override_settings(TRUSTED_PROXIES=[PROXY, "172.28.0.11/31"]):
        assert client_address(peer, forwarded) == expected


async def test_a_spoofed_forwarded_for_does_not_escape_the_per_ip_limit(route):
    ip = random_ip()
    with override_settings(WIDGET_CONNECTIONS_PER_MINUTE=2):
        codes = []
        for i in range(3):
            comm = communicator(ip=ip)
            comm.scope["headers"].append((b"x-forwarded-for", f"10.99.0.{i}".encode()))
            connected, _ = await comm.connect()
            codes.append(await first_close(comm, timeout=0.3))
            await comm.disconnect()
    assert codes == [None, None, widget.CLOSE_RATE_LIMITED]


async def test_behind_a_trusted_proxy_each_caller_has_their_own_budget(route):
    # Every caller reaches daphne from the proxy's address; the budget is per caller, not per proxy.
    callers = [random_ip(), random_ip()]
    with override_settings(WIDGET_CONNECTIONS_PER_MINUTE=1, TRUSTED_PROXIES=[PROXY]):
        codes = []
        for caller in [*callers, callers[0]]:
            comm = communicator(ip=PROXY)
            comm.scope["headers"].append((b"x-forwarded-for", f"6.6.6.6, {caller}".encode()))
            await comm.connect()
            codes.append(await first_close(comm, timeout=0.3))
            await comm.disconnect()
    assert codes == [None, None, widget.CLOSE_RATE_LIMITED]


def test_http_requests_see_the_client_only_through_a_trusted_proxy():
    seen = {}

    def view(request):
        seen.update(ip=request.META["REMOTE_ADDR"], secure=request.is_secure())

    middleware = ForwardedHeadersMiddleware(view)
    forwarded = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.1", "HTTP_X_FORWARDED_PROTO": "https",
                 "HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_REAL_IP": "6.6.6.6"}
    with override_settings(TRUSTED_PROXIES=[PROXY], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        request = RequestFactory().get("/", REMOTE_ADDR=PROXY, **forwarded)
        middleware(request)
        assert seen == {"ip": "198.51.100.1", "secure": True}
        assert request.META["HTTP_X_FORWARDED_HOST"] == "evil.example"  # the proxy's to set
        request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", **forwarded)
        middleware(request)
        assert seen == {"ip": "203.0.113.7", "secure": False}
        assert not {"HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_REAL_IP"} & set(request.META)


def test_the_forwarded_headers_middleware_runs_first():
    from django.conf import settings

    assert settings.MIDDLEWARE[0] == "core.proxies.ForwardedHeadersMiddleware"


def test_daphne_does_not_trust_forwarding_headers_itself():
    # `daphne --proxy-headers` believes X-Forwarded-For from any peer; the app does it instead.
    for name in ("Dockerfile", "docker-compose.yml"):
        lines = [line for line in (ROOT / name).read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not [line for line in lines if "--proxy-headers" in line]
    assert "TRUSTED_PROXIES: 172.28.0.10" in (ROOT / "docker-compose.yml").read_text()
