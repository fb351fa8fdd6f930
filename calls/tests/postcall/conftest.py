"""Fixtures for the post-call tests: demo agents, calls built from scenario scripts, eager Celery."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from agents.models import AgentConfig
from calls.models import Call
from calls.services import call_start, turn_record
from calls.tests.postcall.scenarios import Scenario
from voicecrm.demo.agents import DEMO_AGENTS


def demo_agent(slug: str) -> AgentConfig:
    # A deep copy: tests edit schemas and rules, and must not edit the demo data for later tests.
    spec = copy.deepcopy(next(a for a in DEMO_AGENTS if a["slug"] == slug))
    agent = AgentConfig.objects.filter(slug=slug).first()
    return agent or AgentConfig.objects.create(**spec)


def consultation_service():
    from customers.models import OpeningHours, Service

    service, created = Service.objects.get_or_create(slug="consultation", defaults={"name": "Consultation",
                                                                                    "duration_minutes": 30})
    if created:
        for weekday in range(7):
            OpeningHours.objects.create(service=service, weekday=weekday, opens=dt.time(9), closes=dt.time(17))
    return service


def scenario_customer(scenario: Scenario):
    from customers.models import Customer

    if not scenario.customer_account:
        return None
    customer, _ = Customer.objects.get_or_create(
        account_number=scenario.customer_account,
        defaults={"first_name": "James", "last_name": "Smith", "phone": "+14155551004",
                  "email": "james.smith@example.com"},
    )
    return customer


def call_with_turns(scenario: Scenario, *, started_at: dt.datetime | None = None) -> Call:
    """A live call of the scenario's agent with its lines as turns, not yet ended."""
    agent = demo_agent(scenario.agent)
    customer = scenario_customer(scenario)
    call = call_start(channel=Call.Channel.API, agent=agent, from_number="+14155550142", customer=customer)
    if started_at is not None:
        Call.objects.filter(pk=call.pk).update(started_at=started_at, answered_at=started_at)
        call.refresh_from_db()
    t = 0
    for speaker, text in scenario.lines:
        duration = 300 + 60 * len(text.split())
        turn_record(call=call, speaker=speaker, text=text, start_ms=t, end_ms=t + duration)
        t += duration + 400
    return call


def assert_extracted(call: Call, scenario: Scenario) -> None:
    from calls.models import CallTranscript

    data = call.structured_data
    transcript = CallTranscript.objects.filter(call=call).values_list("text", flat=True).first()
    print(f"{scenario.name} transcript:\n{transcript or '(live turns)'}\ndata: {data}")
    for name, value in scenario.expected.items():
        assert data.get(name) == value, f"{scenario.name}: {name} = {data.get(name)!r}, expected {value!r} in {data}"
    for name, parts in scenario.contains.items():
        for part in parts:
            assert part.lower() in str(data.get(name, "")).lower(), f"{scenario.name}: {name} = {data.get(name)!r} lacks {part!r}"


@pytest.fixture
def eager_celery():
    """Celery runs tasks in-process, like the embedded mode, whatever REDIS_URL says."""
    from voicecrm.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture
def today_noon():
    return timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)


# --- Real processes (the reliability tests) --------------------------------------------------------

class Processes:
    def __init__(self, redis, worker, beat, fault_dir) -> None:
        self.redis, self.worker, self.beat, self.fault_dir = redis, worker, beat, fault_dir

    def arm(self, point: str) -> None:
        (self.fault_dir / f"{point}.arm").write_text("")

    def fired_pid(self, point: str) -> int | None:
        path = self.fault_dir / f"{point}.fired"
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text else None


@pytest.fixture(scope="module")
def postcall_processes(django_db_setup, tmp_path_factory):
    """Started for the module that needs them and stopped after it, so no other test's calls
    reach this worker (this process publishes to the private Redis only meanwhile)."""
    from calls.tests.postcall.harness import CeleryProcess, RedisServer, point_app_at, process_env
    from voicecrm.celery import app

    workdir = tmp_path_factory.mktemp("postcall-processes")
    fault_dir = workdir / "faults"
    fault_dir.mkdir()
    redis = RedisServer(workdir)
    redis.start()
    # The worker delivers webhooks to a receiver on loopback, which only an allow-list permits.
    env = process_env(redis_url=redis.url, fault_dir=fault_dir, WEBHOOK_ALLOWED_PRIVATE_HOSTS="127.0.0.1")
    worker = CeleryProcess(
        "worker",
        ["worker", "-Q", "default,stt,tts,postcall", "-c", "2", "-n", f"postcall-test-{redis.port}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        env, workdir, "ready.", app="calls.tests.postcall.fault_worker",
    )
    beat = CeleryProcess("beat", ["beat", "-s", str(workdir / "beat-schedule"), "--loglevel", "INFO"], env, workdir,
                         "beat: Starting")
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    try:
        worker.start()
        beat.start()
        point_app_at(redis.url)
        yield Processes(redis, worker, beat, fault_dir)
    finally:
        beat.stop()
        worker.stop()
        redis.stop()
        point_app_at(previous[0])
        app.conf.task_always_eager = previous[1]


@pytest.fixture
def processes(postcall_processes):
    """The shared worker, beat and Redis, checked alive before each test; logs shown on failure."""
    procs = postcall_processes
    if not procs.redis.ping():
        procs.redis.start()
    for proc in (procs.worker, procs.beat):
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()
    for leftover in procs.fault_dir.iterdir():
        leftover.unlink()
    yield procs
    print("---- worker log ----\n" + procs.worker.tail(80))
    print("---- beat log ----\n" + procs.beat.tail(10))


# --- A recorded broker and a loopback HTTP server (unit tests) -----------------------------------------

class RecordedBroker:
    """Stands in for Redis: records each published task, or fails like a broker that is down."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple, dict]] = []
        self.down = False

    def names(self) -> list[str]:
        return [name.rsplit(".", 1)[-1] for name, _, _ in self.sent]

    def clear(self) -> None:
        self.sent.clear()


@pytest.fixture
def broker(monkeypatch):
    from celery.app.task import Task
    from kombu.exceptions import OperationalError

    from voicecrm.celery import app

    recorded = RecordedBroker()

    def apply_async(self, args=None, kwargs=None, **options):
        if recorded.down:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        recorded.sent.append((self.name, tuple(args or ()), options))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    previous, app.conf.task_always_eager = app.conf.task_always_eager, False
    yield recorded
    app.conf.task_always_eager = previous


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 answering with the statuses it is given, then 200."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses: list[int] = []
        self.requests: list[dict] = []
        self.reply_body = b"ok"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(server.reply_body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback_receivers(settings):
    """Webhooks refuse loopback targets unless listed, as an on-premise receiver would be."""
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    return settings


@pytest.fixture
def loopback(loopback_receivers):
    server = LoopbackServer()
    yield server
    server.close()
