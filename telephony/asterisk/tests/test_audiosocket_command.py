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
