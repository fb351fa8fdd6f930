"""A real daphne serving a widget call, stopped the two ways a deploy or a crash stops it:
SIGTERM (the call hears a goodbye and is finalized before the process exits) and kill -9 (the
heartbeat stops, and the sweep finalizes the call with its turns and recording)."""

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websocket
from django.conf import settings as django_settings
from django.utils import timezone

from agents.tests.factories import AgentConfigFactory
from calls.models import AnalysisRun, Call, Turn, WebhookDelivery, WebhookEndpoint
from calls.sweeps import call_sweep_lost
from telephony.models import Route

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SHOP = "https://shop.example"
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = django_settings.DATABASES["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"  # another process must reach the test database
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def server(tmp_path):
    """daphne as production runs it (voicecrm.asgi:application), on the test database, with the
    fake speech engines; post-call tasks go to an in-memory broker."""
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="proc-key", allowed_origins=SHOP,
                         agent=AgentConfigFactory(greeting="Hello.", silence_reprompt_seconds=60))
    WebhookEndpoint.objects.create(name="crm", url="https://hooks.example.com/calls", events=["call.ended"])
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url(), "DEBUG": "1", "MEDIA_ROOT": str(tmp_path),
        "STT_ENGINE": "calls.speech.fake.FakeSttEngine", "TTS_ENGINE": "calls.speech.fake.FakeTtsEngine",
        "CELERY_BROKER_URL": "memory://", "CELERY_TASK_ALWAYS_EAGER": "0", "REDIS_URL": "",
        "SHUTDOWN_GRACE_SECONDS": "10", "CALL_HEARTBEAT_SECONDS": "0.5", "WIDGET_MAX_UNPLAYED_MS": "60000",
    }
    daphne = Path(sys.executable).with_name("daphne")
    proc = subprocess.Popen([str(daphne), "-b", "127.0.0.1", "-p", str(port), "--application-close-timeout", "10",
                             "voicecrm.asgi:application"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "slow"
            time.sleep(0.2)
    yield proc, port, tmp_path
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def open_call(port: int) -> tuple[websocket.WebSocket, Call]:
    """A widget call that has been greeted and is listening, with some caller audio sent."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/voice/proc-key/", origin=SHOP, timeout=15)
    ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
    ready = next(m for m in messages(ws) if m["type"] == "ready")
    for _ in range(50):  # a second of (quiet) caller audio, for the recording
        ws.send_binary(bytes(640))
    next(m for m in messages(ws) if m == {"type": "state", "state": "listening"})
    call = Call.objects.get(public_id=ready["call_id"])
    wait_for(lambda: Turn.objects.filter(call=call).exists())  # the greeting is stored as it ends
    return ws, call


def messages(ws: websocket.WebSocket):
    """The JSON messages the server sends (audio frames skipped), until the socket closes."""
    while True:
        try:
            opcode, data = ws.recv_data()
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        if opcode == websocket.ABNF.OPCODE_TEXT:
            yield json.loads(data)


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sigterm_ends_live_calls_politely_and_finalizes_them(server):
    proc, port, _ = server
    ws, call = open_call(port)

    proc.send_signal(signal.SIGTERM)
    rest = list(messages(ws))

    said = [m["text"] for m in rest if m["type"] == "agent_text"]
    assert said == ["I'm sorry, we have to end this call now.", "Please call back in a moment."]
    assert [m["reason"] for m in rest if m["type"] == "ended"] == ["server_shutdown"]
    assert proc.wait(30) == 0, proc.stdout.read()
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "server_shutdown")
    assert call.recording
    assert AnalysisRun.objects.filter(call=call).exists()
    assert WebhookDelivery.objects.filter(event="call.ended").count() == 1


def test_kill_9_leaves_a_heartbeat_that_stops_and_the_sweep_finalizes_the_call(server, settings):
    proc, port, media = server
    ws, call = open_call(port)
    spool = media / "recordings" / "partial" / str(call.public_id)
    wait_for(lambda: spool.is_dir() and any(f.stat().st_size for f in spool.iterdir()))

    proc.kill()  # SIGKILL: nothing in the process runs again
    proc.wait(10)
    ws.close()
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.heartbeat_at is not None

    settings.MEDIA_ROOT = media
    assert call_sweep_lost()["finalized"] == 0  # its heartbeat is still recent
    later = timezone.now() + dt.timedelta(seconds=settings.CALL_LOST_AFTER_SECONDS + 1)
    assert call_sweep_lost(now=later)["finalized"] == 1

    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.FAILED, "lost")
    assert list(Turn.objects.filter(call=call).values_list("speaker", "text")) == [("agent", "Hello.")]
    assert call.recording and not spool.exists()
    assert AnalysisRun.objects.filter(call=call).exists()
    assert WebhookDelivery.objects.filter(event="call.ended").count() == 1
