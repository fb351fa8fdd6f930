"""The widget socket's handshake and limits: who may connect, and what closes a connection."""

import json

import pytest
from django.test import override_settings

from telephony.browser import widget
from telephony.models import Route

from .conftest import SHOP, communicator, random_ip

pytestmark = pytest.mark.django_db(transaction=True)


async def closed_with(comm) -> int | None:
    """Connect and return the close code the server sends first (None: it stayed open)."""
    connected, _ = await comm.connect()
    assert connected  # refusals are close codes after the handshake, so the widget can say why
    message = await comm.receive_output(timeout=3)
    return message.get("code") if message["type"] == "websocket.close" else None


async def test_unknown_key_is_refused_with_4403(route):
    assert await closed_with(communicator("/ws/voice/no-such-key/")) == widget.CLOSE_FORBIDDEN


async def test_foreign_origin_is_refused_with_4403(route):
    assert await closed_with(communicator(origin="https://evil.example")) == widget.CLOSE_FORBIDDEN


async def test_missing_origin_is_refused_with_4403(route):
    assert await closed_with(communicator(origin=None)) == widget.CLOSE_FORBIDDEN


async def test_inactive_key_or_agent_is_refused(route, agent):
    await Route.objects.filter(pk=route.pk).aupdate(active=False)
    assert await closed_with(communicator()) == widget.CLOSE_FORBIDDEN
    await Route.objects.filter(pk=route.pk).aupdate(active=True)
    agent.active = False
    await agent.asave()
    assert await closed_with(communicator()) == widget.CLOSE_FORBIDDEN


async def test_a_listed_origin_connects_although_it_is_not_one_of_our_hosts(route):
    # shop.example is not in ALLOWED_HOSTS: /ws/voice/ is not behind the host validator.
    comm = communicator(origin=SHOP + "/")
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


@override_settings(PUBLIC_BASE_URL="https://crm.example")
async def test_our_own_public_origin_may_use_a_key_without_origins_of_its_own(route):
    await Route.objects.filter(pk=route.pk).aupdate(allowed_origins="")
    comm = communicator(origin="https://crm.example")
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
    assert await closed_with(communicator(origin=SHOP)) == widget.CLOSE_FORBIDDEN


@override_settings(PUBLIC_BASE_URL="https://crm.example")
async def test_a_key_that_lists_origins_is_refused_on_our_public_origin(route):
    # A customer's key is for the sites it names; our own pages (anyone can open the demo page
    # in development) must not be a way to spend its calls.
    assert await closed_with(communicator(origin="https://crm.example")) == widget.CLOSE_FORBIDDEN
    assert not widget.origin_allowed(route, "https://crm.example")


async def test_other_websocket_routes_keep_the_host_check(route):
    from channels.testing import WebsocketCommunicator

    from voicecrm.asgi import application

    comm = WebsocketCommunicator(application, "/ws/other/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await comm.connect()
    assert not connected


@override_settings(WIDGET_CONNECTIONS_PER_MINUTE=3)
async def test_connections_per_ip_are_rate_limited_with_4429(route):
    ip = random_ip()
    for _ in range(3):
        comm = communicator(ip=ip)
        connected, _ = await comm.connect()
        assert connected
        assert await comm.receive_nothing(timeout=0.1)
        await comm.disconnect()
    assert await closed_with(communicator(ip=ip)) == widget.CLOSE_RATE_LIMITED
    # Another caller is not affected.
    other = communicator()
    connected, _ = await other.connect()
    assert connected and await other.receive_nothing(timeout=0.1)
    await other.disconnect()


async def test_rate_limit_window_is_per_minute():
    ip = random_ip()
    with override_settings(WIDGET_CONNECTIONS_PER_MINUTE=1):
        assert await widget.connection_allowed(ip, now=600.0)
        assert not await widget.connection_allowed(ip, now=659.0)
        assert await widget.connection_allowed(ip, now=660.0)


async def test_oversized_message_closes_with_1009(route):
    comm = communicator()
    await comm.connect()
    await comm.send_to(bytes_data=b"\x00" * 20000)
    message = await comm.receive_output(timeout=3)
    assert message == {"type": "websocket.close", "code": widget.CLOSE_TOO_BIG}


async def test_oversized_text_closes_with_1009(route):
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "x" * 20000}))
    assert (await comm.receive_output(timeout=3))["code"] == widget.CLOSE_TOO_BIG


@override_settings(WIDGET_IDLE_TIMEOUT_SECONDS=2)
async def test_an_idle_connection_is_closed_with_4408(route):
    comm = communicator()
    await comm.connect()
    message = await comm.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": widget.CLOSE_IDLE}


async def test_bad_input_before_start_is_dropped_not_fatal(route):
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from())["code"] == "bad_json"
    await comm.send_to(text_data=json.dumps({"type": "launch_missiles"}))
    assert (await comm.receive_json_from())["code"] == "unknown_type"
    await comm.send_to(text_data=json.dumps(["start"]))
    assert (await comm.receive_json_from())["code"] == "bad_json"
    await comm.send_to(text_data=json.dumps({"type": "start", "sample_rate": 12345}))
    assert (await comm.receive_json_from())["code"] == "bad_start"
    await comm.send_to(bytes_data=b"\x00" * 640)  # audio before start: dropped silently
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()
