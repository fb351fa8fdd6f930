"""The AGI protocol and the server's defences: replies parsed as res_agi.c writes them, values
quoted so Asterisk's parser reads them back whole, and a connection that breaks the protocol,
stalls or floods closed without disturbing the others."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from telephony.asterisk import fastagi as fastagi_server
from telephony.asterisk.agi import AgiCommandError, AgiError, agi_quote, parse_reply_line
from telephony.asterisk.tests.fastagi_live import *  # noqa: F403 - the fixtures
from telephony.asterisk.tests.fastagi_live import LiveFastAgi
from telephony.asterisk.tests.pbx import FakeChannel, agi_environment, parse_args

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("queued_pipeline")]

AWKWARD = 'Zoë "the boss" O\'Neil, a\\b (c) $d{e} |f'


@pytest.mark.parametrize(("line", "code", "result", "data", "attributes"), [
    ("200 result=1", 200, "1", None, {}),
    ("200 result=0 (timeout) endpos=1234", 200, "0", "timeout", {"endpos": "1234"}),
    ("200 result=1 (a (b) c)", 200, "1", "a (b) c", {}),
    ("200 result=1 ()", 200, "1", "", {}),
    ("200 result=-1 endpos=0", 200, "-1", None, {"endpos": "0"}),
    ("510 Invalid or unknown command", 510, "", None, {}),
    ("511 Command Not Permitted on a dead channel", 511, "", None, {}),
    ("520 Invalid command syntax.  Proper usage not available.", 520, "", None, {}),
])
def test_reply_lines_parse_as_res_agi_writes_them(line, code, result, data, attributes):
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.data, reply.attributes) == (code, result, data, attributes)


@pytest.mark.parametrize("line", ["HTTP/1.1 200 OK", "200 outcome=1", "20 result=1", ""])
def test_anything_else_is_a_protocol_error(line):
    with pytest.raises(AgiError):
        parse_reply_line(line)


def test_a_quoted_value_reads_back_whole_through_asterisks_parser():
    assert parse_args(f"SET VARIABLE NAME {agi_quote(AWKWARD)}") == ["SET", "VARIABLE", "NAME", AWKWARD]
    assert parse_args(f"SET VARIABLE NAME {agi_quote('')}") == ["SET", "VARIABLE", "NAME", ""]
    with pytest.raises(ValueError):
        agi_quote("two\nlines")


@pytest.fixture
def probe(monkeypatch):
    """A step that runs commands and keeps what came back, to test AgiSession over a real socket."""
    seen: list = []

    async def step(agi, db):
        for name, run in (
            ("set", lambda: agi.set_variable("AWKWARD", AWKWARD)),
            ("get", lambda: agi.get_variable("AWKWARD")),
            ("unset", lambda: agi.get_variable("NEVER_SET")),
            ("function", lambda: agi.get_variable("CALLERID(num)")),
        ):
            try:
                seen.append((name, await run()))
            except AgiCommandError as error:
                seen.append((name, error.code, error.reply.usage))
        seen.append(("hung_up", agi.hung_up, agi.args, agi.script))

    monkeypatch.setitem(fastagi_server.STEPS, "probe", step)
    return seen


def test_values_round_trip_and_a_usage_block_does_not_shift_later_replies(fastagi, probe):
    usage = ["520-Invalid command syntax.  Proper usage follows:", " Usage: SET VARIABLE <variablename> <value>",
             "\tSets a variable to the current channel.", "520 End of proper usage."]
    channel = FakeChannel(fastagi.port, scripted={0: usage, 3: ["100 result=0 Trying...", "200 result=1 (201)"]})
    channel.run(agi_environment(port=fastagi.port, script="probe?x=1", args=("7000", "two words")))
    assert probe[0] == ("set", 520, " Usage: SET VARIABLE <variablename> <value>\n\tSets a variable to the current channel.")
    assert probe[1:] == [("get", None), ("unset", None), ("function", "201"), ("hung_up", False, ["7000", "two words"], "probe")]

    probe.clear()
    channel = FakeChannel(fastagi.port, hangup_before=1)
    channel.run(agi_environment(port=fastagi.port, script="probe"))
    assert channel.variables["AWKWARD"] == AWKWARD
    assert probe[1] == ("get", AWKWARD)  # the reply after HANGUP, not HANGUP itself
    assert probe[-1][:2] == ("hung_up", True)


def raw_client(port: int, payload: bytes, *, timeout: float = 20.0) -> bytes:
    """Send `payload`, then read until the server closes; returns what it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if payload:
            sock.sendall(payload)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:  # closed with our unread bytes still in its buffer
            pass
        return received


def still_serving(live) -> None:
    channel = FakeChannel(live.port).run(agi_environment(port=live.port, extension="7999", dnid="7999"))
    assert channel.variables == {"VOICECRM_ROUTE": "unknown"}


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: pbx\r\n\r\n",
    b"agi_network: yes\nthis is not an agi line\n\n",
    b"agi_network: yes\nagi_request: agi://x/" + b"a" * 20000 + b"\n\n",
    b"\n",
    b"\x00\xff\x10binary",
])
def test_garbage_closes_that_connection_and_the_server_goes_on(fastagi, payload, agent):
    assert raw_client(fastagi.port, payload) == b""  # not a single command sent back
    assert fastagi.stats["protocol_errors"] + fastagi.stats["closed_early"] == 1
    still_serving(fastagi)


def test_a_stalled_client_is_cut_off_while_others_are_served(agent):
    live = LiveFastAgi(timeout=1.0).start()
    try:
        result = {}
        stalled = threading.Thread(target=lambda: result.update(got=raw_client(live.port, b"agi_network: yes\nagi_req")))
        stalled.start()
        still_serving(live)  # served while the other connection hangs
        stalled.join(20)
        assert not stalled.is_alive() and result["got"] == b""
        assert live.stats["protocol_errors"] == 1
    finally:
        live.stop()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def test_connections_beyond_the_cap_are_refused(agent):
    live = LiveFastAgi(timeout=5.0, max_connections=1).start()
    try:
        with socket.create_connection(("127.0.0.1", live.port), timeout=20) as holder:
            holder.sendall(b"agi_network: yes\n")
            wait_for(lambda: live.stats["connections"] == 1, "the first connection is being served")
            assert raw_client(live.port, agi_environment(port=live.port)) == b""
            assert live.stats["refused_busy"] == 1
        wait_for(lambda: not live.server._active, "the first connection ended")
        still_serving(live)
    finally:
        live.stop()


def test_peers_outside_the_allowed_networks_are_closed_unread(agent):
    refused = LiveFastAgi(allowed_networks=["10.0.0.0/8", "fd00::/8"]).start()
    allowed = LiveFastAgi(allowed_networks=["127.0.0.1/32"]).start()
    try:
        assert raw_client(refused.port, agi_environment(port=refused.port)) == b""
        assert refused.stats["refused_address"] == 1 and refused.stats["connections"] == 0
        still_serving(allowed)
    finally:
        refused.stop()
        allowed.stop()
