"""`manage.py run_audiosocket` as an operator runs it: its own process on the test database, the
speech models loaded before it listens, calls served until SIGTERM, then a polite drain."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from calls.models import Call
from calls.session import VoiceSession
from telephony.asterisk.server import BUSY_MESSAGE

from .audiosocket_support import (  # noqa: F401 - the *_fixture names are fixtures
    MAX_WER,
    agent_fixture,
    prepared_call,
    route_fixture,
    transcribe,
    warm_speech_fixture,
    wer,
)
from .fake_asterisk import FakeAsterisk

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("warm_speech")]

ROOT = Path(__file__).resolve().parents[3]


def test_run_audiosocket_serves_calls_and_drains_politely_on_sigterm(agent, route):
    call, late = prepared_call(agent, provider_call_id="5.1"), prepared_call(agent, provider_call_id="5.2")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "CELERY_BROKER_URL": "memory://",
           "CELERY_TASK_ALWAYS_EAGER": "0", "SHUTDOWN_GRACE_SECONDS": "15"}
    process = subprocess.Popen([sys.executable, "manage.py", "run_audiosocket", "--bind", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        while "listening on" not in output:
            line = process.stdout.readline()
            assert line, f"run_audiosocket exited before listening:\n{output}"
            output += line
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", output)[1])

        async def scenario():
            live = FakeAsterisk(port, call.public_id)
            await live.connect()
            greeted = await live.until_audible()
            await live.until_quiet(after=greeted)
            stop_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            newcomer = FakeAsterisk(port, late.public_id)  # while the process drains
            await newcomer.connect()
            await asyncio.gather(live.until_closed(), newcomer.until_closed())
            return live, newcomer, stop_at

        live, newcomer, stop_at = asyncio.run(scenario())
        rest, _ = process.communicate(timeout=30)
        output += rest
        assert process.returncode == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    live.check()
    newcomer.check()
    # The live caller heard the goodbye, then the line was hung up.
    assert live.hangup_at is not None
    goodbye = transcribe(live.audio(start=stop_at), 8000)
    assert wer(VoiceSession.SHUTDOWN_GOODBYE, goodbye) <= MAX_WER, goodbye
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "server_shutdown")
    assert call.turns.filter(speaker="agent", text=VoiceSession.SHUTDOWN_GOODBYE).exists()
    # A caller arriving during the drain was told everyone is busy.
    assert newcomer.hangup_at is not None
    heard = transcribe(newcomer.audio(), 8000)
    assert wer(BUSY_MESSAGE, heard) <= MAX_WER, heard
    late.refresh_from_db()
    assert (late.status, late.end_reason) == (Call.Status.FAILED, "server_busy")
    assert "AudioSocket server stopped" in output


@pytest.mark.parametrize("bind, networks, warned", [
    ("0.0.0.0", [], True), ("10.1.2.3", [], True), ("0.0.0.0", ["10.0.0.5/32"], False),
    ("127.0.0.1", [], False), ("::1", [], False), ("localhost", [], False),
])
def test_run_audiosocket_warns_when_any_peer_could_reach_it(bind, networks, warned, settings, monkeypatch, caplog):
    from telephony.management.commands import run_audiosocket

    settings.AUDIOSOCKET_ALLOWED_NETWORKS = networks
    monkeypatch.setattr(run_audiosocket, "session_warm_up", lambda **kwargs: None)
    monkeypatch.setattr(run_audiosocket.AudioSocketServer, "prepare", lambda self: None)
    monkeypatch.setattr(run_audiosocket.asyncio, "run", lambda coro: coro.close())  # serve nothing
    call_command("run_audiosocket", bind=bind, port=0)
    assert ("no AUDIOSOCKET_ALLOWED_NETWORKS" in caplog.text) is warned
