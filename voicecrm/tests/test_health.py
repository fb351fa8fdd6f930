import asyncio
import json
import shutil
import socket
import subprocess
import time

import pytest
from channels.layers import channel_layers

from agents.tests.factories import AgentConfigFactory
from calls.session import live
from telephony.models import Route

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def own_redis():
    """A private redis-server, so stopping it leaves the shared one alone."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for this test"
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield process, f"redis://127.0.0.1:{port}/0"
    process.kill()
    process.wait()


def use_redis(settings, url: str) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from voicecrm.celery import app

    app.conf.broker_url = url
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def restore_layers():
    from voicecrm.celery import app

    broker = app.conf.broker_url
    yield
    app.conf.broker_url = broker
    channel_layers.backends.clear()


def test_healthy_with_redis_up(client, settings, own_redis):
    _, url = own_redis
    use_redis(settings, url)
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {
        "database": {"status": "up"}, "channel_layer": {"status": "up"}, "broker": {"status": "up"},
    }


def test_a_stopped_redis_is_reported_down_with_503(client, settings, own_redis):
    process, url = own_redis
    use_redis(settings, url)
    process.kill()
    process.wait()
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["channel_layer"]["status"] == "down"
    assert checks["broker"]["status"] == "down"


def test_embedded_defaults_need_no_broker(client, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    channel_layers.backends.clear()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "channel_layer"}


# --- Liveness and readiness with calls connected ------------------------------------------------

SHOP = "https://shop.example"


async def _ready_with_open_sockets(sockets: int) -> tuple[int, dict]:
    """Open widget sockets on the full ASGI stack (each consumer then sits in the channel
    layer's receive loop, as in production), and ask /healthz/ready on the same server."""
    from channels.testing import HttpCommunicator, WebsocketCommunicator

    from voicecrm.asgi import application

    opened = []
    try:
        for n in range(sockets):
            comm = WebsocketCommunicator(application, "/ws/voice/health-key/", headers=[(b"origin", SHOP.encode())])
            comm.scope["client"] = (f"10.9.9.{n + 1}", 50000)
            connected, _ = await comm.connect()
            assert connected
            opened.append(comm)
        await asyncio.sleep(0.3)  # the consumers are now blocked in the layer's receive
        response = await HttpCommunicator(application, "GET", "/healthz/ready",
                                          headers=[(b"host", b"localhost")]).get_response(timeout=10)
        return response["status"], json.loads(response["body"])
    finally:
        for comm in opened:
            await comm.disconnect()


@pytest.mark.django_db(transaction=True)
def test_ready_while_websockets_are_connected_on_the_redis_layer(settings, own_redis):
    _, url = own_redis
    use_redis(settings, url)
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="health-key", agent=AgentConfigFactory(),
                         allowed_origins=SHOP)
    status, body = asyncio.run(_ready_with_open_sockets(3))
    assert status == 200, body
    assert body["checks"]["channel_layer"] == {"status": "up"}


def test_liveness_answers_while_readiness_reports_a_dead_redis(client, settings, own_redis):
    process, url = own_redis
    use_redis(settings, url)
    process.kill()
    process.wait()
    live_response = client.get("/healthz/live")
    assert live_response.status_code == 200 and live_response.json() == {"status": "ok"}
    assert client.get("/healthz/ready").status_code == 503
    assert client.get("/healthz").status_code == 503  # /healthz stays readiness


def test_anonymous_callers_see_no_internal_error_text(client, settings, own_redis, alice):
    process, url = own_redis
    use_redis(settings, url)
    process.kill()
    process.wait()
    anonymous = client.get("/healthz/ready").json()
    assert anonymous["checks"]["channel_layer"] == {"status": "down"}
    assert url.split("//")[1].split("/")[0] not in json.dumps(anonymous)
    client.force_login(alice)
    staff = client.get("/healthz/ready").json()
    assert staff["checks"]["channel_layer"]["status"] == "down" and staff["checks"]["channel_layer"]["error"]


def test_a_draining_process_is_not_ready(client, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    channel_layers.backends.clear()
    live._reset_for_tests()
    try:
        assert client.get("/healthz/ready").status_code == 200
        asyncio.run(live.drain(0))
        response = client.get("/healthz/ready")
        assert response.status_code == 503 and response.json()["checks"]["process"] == {"status": "draining"}
        assert client.get("/healthz/live").status_code == 200
    finally:
        live._reset_for_tests()
