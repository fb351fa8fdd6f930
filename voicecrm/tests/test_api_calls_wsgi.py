"""The API served over WSGI by gunicorn, as docs/benchmarks.md recommends for HTTP: a real gunicorn
process on voicecrm.wsgi, with DEBUG off, reading the test database."""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection
from knox.models import AuthToken

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, Turn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def roles():
    """Transactional tests start from an empty database: the role groups the migrations made are gone."""
    from django.apps import apps

    from core.roles import roles_sync

    roles_sync(apps)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(transactional_db):
    settings = connection.settings_dict
    port = free_port()
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(48), "ALLOWED_HOSTS": "127.0.0.1",
           "SECURE_SSL_REDIRECT": "0", "DB_CONN_MAX_AGE": "60",
           "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"}
    if connection.vendor != "postgresql":
        pytest.fail("this test serves the PostgreSQL test database to another process")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "2", "--worker-class", "gthread", "voicecrm.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_gunicorn_serves_the_api_with_tokens_and_json_errors(gunicorn, charlie):
    call = Call.objects.create(channel="twilio", agent=AgentConfigFactory(slug="dispatch"), status="completed")
    Turn.objects.create(call=call, index=0, speaker="agent", text="Hi, this is dispatch.", start_ms=0)
    token = AuthToken.objects.create(user=charlie)[1]
    with httpx.Client(base_url=gunicorn, headers={"Authorization": f"Token {token}"}, timeout=30) as http:
        listing = http.get("/api/v1/calls/")
        assert listing.status_code == 200 and listing.json()["results"][0]["agent"] == "dispatch"
        text = http.get(f"/api/v1/calls/{call.public_id}/transcript/", params={"format": "text"})
        assert text.text == "[00:00] Agent: Hi, this is dispatch.\n"
        assert http.get("/api/v1/calls/", headers={"Authorization": "Token nope"}).status_code == 401
        missing = http.get("/api/v1/no-such-thing/")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}
