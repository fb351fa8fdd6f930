import shutil
import socket
import subprocess
import time

import pytest
from channels.layers import channel_layers

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
