"""Fixtures of the FastAGI and ARI tests (imported by those modules, not a conftest, so the
AudioSocket tests beside them keep their own).

The FastAGI server runs for real in a thread with its own event loop, as `run_fastagi` runs it,
driven from blocking sockets the way Asterisk's AGI() drives it (tests/pbx.py). Its database
threads use their own connections, so these tests need `django_db(transaction=True)`."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from agents.tests.factories import AgentConfigFactory
from telephony.asterisk.fastagi import FastAgiServer
from telephony.models import Route

__all__ = ["FakeAri", "LiveFastAgi", "agent", "ari", "extension", "fastagi", "queued_pipeline"]


class LiveFastAgi:
    def __init__(self, **options) -> None:
        self.server = FastAgiServer(host="127.0.0.1", port=0, **options)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fastagi-test", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> LiveFastAgi:
        self._thread.start()
        assert self._ready.wait(10), "the FastAGI server did not start"
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self):
        return self.server.stats

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(grace=5), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def fastagi():
    live = LiveFastAgi(timeout=2.0).start()
    yield live
    live.stop()


@pytest.fixture
def queued_pipeline():
    """Keep the post-call pipeline queued: calls end here, their analysis is not under test."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def agent(transactional_db):
    return AgentConfigFactory(slug="front-desk", name="Front desk", transfer_target="+14155550100",
                              retry_attempts=1, retry_spacing_minutes=15)


@pytest.fixture
def extension(agent):
    return Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7000", agent=agent)


class FakeAri(ThreadingHTTPServer):
    """Records each request; answers from `responses` ("METHOD /path" -> (status, body)), else
    as ARI does: originate returns the new Channel, DELETE of a live channel 204, of another 404."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.responses: dict[str, tuple[int, dict | None]] = {}
        self.channels: set[str] = set()
        self.release = threading.Event()  # requests to "/ari/slow" wait for it
        self.release.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAri

    def log_message(self, *args) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append({
            "method": self.command, "path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "json": body, "auth": self.headers.get("Authorization", ""),
        })
        self.server.release.wait(10)
        key = f"{self.command} {parts.path}"
        status, payload = self.server.responses.get(key) or self._as_asterisk(parts.path, body)
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _as_asterisk(self, path: str, body):
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if self.command == "POST" and path == "/ari/channels":
            channel_id = query.get("channelId") or "1733031000.77"
            if channel_id in self.server.channels:
                return 409, {"message": "Channel with given unique ID already exists"}
            self.server.channels.add(channel_id)
            return 200, {"id": channel_id, "name": f"{query['endpoint'].split('@')[0]}-00000007;1", "state": "Down",
                         "caller": {"name": "", "number": query.get("callerId", "")},
                         "dialplan": {"context": query["context"], "exten": query["extension"], "priority": 1}}
        if self.command == "DELETE" and path.startswith("/ari/channels/"):
            channel_id = path.rsplit("/", 1)[1]
            if channel_id in self.server.channels:
                self.server.channels.discard(channel_id)
                return 204, None
            return 404, {"message": "Channel not found"}
        return 404, {"message": "Resource not found"}

    do_POST = do_DELETE = do_GET = _serve


@pytest.fixture
def ari(settings):
    server = FakeAri()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ASTERISK_ARI_URL = server.url
    settings.ASTERISK_ARI_USER = "voicecrm"
    settings.ASTERISK_ARI_PASSWORD = "s3cret pass"
    settings.ASTERISK_OUTBOUND_ENDPOINT = "Local/{number}@voicecrm-dial"
    settings.ASTERISK_OUTBOUND_CONTEXT = "voicecrm-outbound"
    settings.ASTERISK_RING_SECONDS = 30
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
