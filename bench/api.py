"""REST API read latency under load: list and detail endpoints on PostgreSQL with 10k customers,
20k calls and 200k turns, at a steady request rate from a loopback load generator, against a real
server process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voicecrm_apibench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/api.py [--rate 100] [--seconds 60] [--server daphne] [--reseed]

The database named in DATABASE_URL is created (and migrated) if it does not exist, and seeded once
with bulk inserts (`--reseed` starts again); its rows are kept for the next run. The server runs as
production runs it: DEBUG off, token authentication, the throttles on Redis (REDIS_URL). `--server
daphne` (default) is one daphne process, as the Dockerfile starts it, with DB_CONN_MAX_AGE=0 (it runs
every request in a new thread); `--server gunicorn` serves voicecrm.wsgi with gunicorn's threaded
workers (`--workers`, `--threads`), each thread keeping its database connection (DB_CONN_MAX_AGE=60).
The load is open-loop: request i leaves at start + i / rate whatever the answers before it, so a
slow server queues requests instead of slowing the generator (no coordinated omission). The list and
detail endpoints take turns, each request from one of ten Supervisor tokens (the per-user throttle is
1200/minute); the analytics endpoints are measured apart, at a low rate. Printed: p50/p95/max per
endpoint, errors, the CPU of the server and of this load generator, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The server's environment, as production sets it (the bench process reads the same settings).
SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": "WARNING",
}
CUSTOMERS, CALLS, TURNS_PER_CALL = 10_000, 20_000, 10
USERS = 10
LOG = Path(os.environ.get("TMPDIR", "/tmp")) / "voicecrm-bench-api-server.log"
INTENTS = ["order_status", "billing", "appointment", "driver_check_in", "technical", "cancellation", ""]
OUTCOMES = ["resolved", "ticket", "appointment_booked", "transferred", "voicemail", ""]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- the database -----------------------------------------------------------------------------------

def database_create_if_missing(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                         password=parts.password, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def seed(reseed: bool) -> None:
    """10k customers, 20k calls over 60 days (3 agents, 3 channels), 10 turns a call, tickets and
    post-call runs for some; bulk inserts, then ANALYZE."""
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from agents.models import AgentConfig
    from calls.models import AnalysisRun, Call, Turn
    from customers.models import Customer
    from tickets.models import Ticket

    if not reseed and Call.objects.count() >= CALLS and Turn.objects.count() >= CALLS * TURNS_PER_CALL:
        print(f"database already seeded: {Customer.objects.count()} customers, {Call.objects.count()} calls, "
              f"{Turn.objects.count()} turns")
        return
    started = time.perf_counter()
    rng = random.Random(7)
    with transaction.atomic():
        for model in (Turn, AnalysisRun, Ticket, Call, Customer):
            model.objects.all().delete()
        agents = [AgentConfig.objects.get_or_create(slug=slug, defaults={"name": name})[0]
                  for slug, name in (("support", "Support"), ("dispatch", "Dispatch"), ("reception", "Reception"))]
        Customer.objects.bulk_create([
            Customer(account_number=f"{1_000_000 + n}", first_name=rng.choice(["Ada", "Sam", "Lee", "Kim", "Noor"]),
                     last_name=f"Customer{n}", phone=f"+1415{5_000_000 + n:07d}", email=f"c{n}@example.com",
                     company=rng.choice(["", "Acme", "Globex", "Initech"]), postcode=f"{94000 + n % 900}",
                     notes="Prefers calls in the morning." if n % 7 == 0 else "")
            for n in range(CUSTOMERS)], batch_size=2000)
        customer_ids = list(Customer.objects.values_list("pk", flat=True))
        now = timezone.now()
        calls = []
        for n in range(CALLS):
            start = now - dt.timedelta(seconds=rng.uniform(600, 60 * 86400))
            live = n < 20
            answered = live or rng.random() < 0.92
            seconds = rng.uniform(30, 600)
            status = Call.Status.IN_PROGRESS if live else (Call.Status.COMPLETED if answered else Call.Status.NO_ANSWER)
            calls.append(Call(
                channel=rng.choice(["browser", "twilio", "asterisk"]), agent=rng.choice(agents),
                direction=rng.choice(["inbound", "inbound", "outbound"]), from_number=f"+1415{rng.randrange(10**7):07d}",
                to_number="+14155550100", customer_id=rng.choice(customer_ids) if rng.random() < 0.8 else None,
                status=status, started_at=start, answered_at=start if answered else None,
                ended_at=None if live else start + dt.timedelta(seconds=seconds),
                duration_seconds=None if live or not answered else round(seconds, 3),
                heartbeat_at=now if live else None, intent=rng.choice(INTENTS), outcome=rng.choice(OUTCOMES),
                summary=f"The caller asked about {rng.choice(INTENTS) or 'something'}; the agent answered and "
                        f"{rng.choice(['resolved it', 'opened a ticket', 'booked a visit', 'transferred the call'])}.",
                structured_data={"reason": rng.choice(INTENTS), "callback": rng.random() < 0.3},
                sentiment=rng.choice(["positive", "neutral", "negative"]),
                analysis_status="done" if not live else "not_started"))
        Call.objects.bulk_create(calls, batch_size=2000)
        call_rows = list(Call.objects.values_list("pk", "started_at", "ended_at", "status"))
        turns = []
        for call_id, _start, _end, _status in call_rows:
            for index in range(TURNS_PER_CALL):
                agent_turn = index % 2 == 0
                turns.append(Turn(
                    call_id=call_id, index=index, speaker="agent" if agent_turn else "caller",
                    text=("Thanks for calling, how can I help you today?" if agent_turn
                          else "I'd like to check on my order from last week please."),
                    start_ms=index * 4000, end_ms=index * 4000 + 2500, interrupted=agent_turn and rng.random() < 0.05,
                    voice_to_voice_ms=rng.randint(350, 900) if agent_turn and index else None,
                    stt_ms=None if agent_turn else rng.randint(80, 200), agent_ms=rng.randint(2, 15) if agent_turn else None,
                    tts_first_audio_ms=rng.randint(70, 140) if agent_turn else None))
            if len(turns) >= 20_000:
                Turn.objects.bulk_create(turns, batch_size=5000)
                turns = []
        Turn.objects.bulk_create(turns, batch_size=5000)
        ended = [(pk, end) for pk, _start, end, _status in call_rows if end is not None]
        AnalysisRun.objects.bulk_create([
            AnalysisRun(call_id=pk, number=1, reason="call_ended", status="done", created_at=end,
                        dispatched_at=end, started_at=end, finished_at=end + dt.timedelta(seconds=rng.uniform(3, 30)))
            for pk, end in ended], batch_size=5000)
        Ticket.objects.bulk_create([
            Ticket(reference=f"T{100_000 + n}", subject="Follow up", call_id=pk, created_at=end,
                   customer_id=rng.choice(customer_ids))
            for n, (pk, end) in enumerate(ended[::10])], batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded {CUSTOMERS} customers, {CALLS} calls, {CALLS * TURNS_PER_CALL} turns, "
          f"{len(ended)} post-call runs, {len(ended[::10])} tickets in {time.perf_counter() - started:.0f} s")


def tokens() -> list[str]:
    from django.contrib.auth.models import Group, User
    from knox.models import AuthToken

    supervisors = Group.objects.get(name="Supervisor")
    result = []
    for n in range(USERS):
        user, _ = User.objects.get_or_create(username=f"bench{n}", defaults={"is_staff": True})
        user.groups.add(supervisors)
        # One token a user, as an integration has: knox reads every token of the user on each request.
        AuthToken.objects.filter(user=user).delete()
        result.append(AuthToken.objects.create(user=user)[1])
    return result


def endpoints() -> dict[str, list[str]]:
    """Each endpoint's paths: lists and a sample of real objects for details."""
    from calls.models import Call
    from customers.models import Customer

    rng = random.Random(11)
    customers = list(Customer.objects.values_list("pk", flat=True)[:5000])
    calls = [str(pk) for pk in Call.objects.exclude(status="in_progress").values_list("public_id", flat=True)[:5000]]
    some = lambda ids: rng.sample(ids, 200)  # noqa: E731
    return {
        "customers list": ["/api/v1/customers/"],
        "customers search": [f"/api/v1/customers/?search=Customer{n}" for n in rng.sample(range(CUSTOMERS), 200)],
        "customer detail": [f"/api/v1/customers/{pk}/" for pk in some(customers)],
        "calls list": ["/api/v1/calls/"],
        "calls list, filtered": ["/api/v1/calls/?agent=dispatch&channel=twilio&ordering=-duration_seconds"],
        "call detail (10 turns)": [f"/api/v1/calls/{pk}/" for pk in some(calls)],
        "call transcript": [f"/api/v1/calls/{pk}/transcript/" for pk in some(calls)],
        "live calls": ["/api/v1/calls/live/"],
        "tickets list": ["/api/v1/tickets/"],
        "agents list": ["/api/v1/agents/"],
    }


ANALYTICS = {
    "analytics summary (30 days)": ["/api/v1/analytics/summary/"],
    "analytics daily (30 days, 1 agent)": ["/api/v1/analytics/daily/?agent=support"],
    "analytics latency (30 days)": ["/api/v1/analytics/latency/"],
    "analytics intents (30 days)": ["/api/v1/analytics/intents/"],
}


# --- the server ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(kind: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    bin_dir = Path(sys.executable).parent
    if kind == "daphne":
        command = [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "voicecrm.asgi:application"]
    else:
        gunicorn = bin_dir / "gunicorn"
        if not gunicorn.exists() and not shutil.which("gunicorn"):
            sys.exit("gunicorn is not installed")
        command = [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                   "--worker-class", "gthread", "--access-logfile", "-", "voicecrm.wsgi:application"]
    # gunicorn's threads live as long as the worker, so each keeps its database connection; daphne
    # runs every request in a new thread, whose connection must close with it (DB_CONN_MAX_AGE=0).
    env = {**os.environ, **SERVER_ENV, "DB_CONN_MAX_AGE": "0" if kind == "daphne" else "60"}
    log = open(LOG, "ab")  # the server's access log and errors, not this report
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"the server exited with {process.returncode}")
            time.sleep(0.2)
    server_stop(process)
    sys.exit("the server did not start")


def server_stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that have been waited for (Linux /proc)."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


# --- the load ---------------------------------------------------------------------------------------------

async def load(port: int, paths: dict[str, list[str]], keys: list[str], *, rate: float, seconds: float,
               warmup: float) -> dict[str, dict]:
    import aiohttp

    names = list(paths)
    results: dict[str, dict] = {name: {"ms": [], "errors": {}} for name in names}
    cycles = {name: itertools.cycle(paths[name]) for name in names}
    users = itertools.cycle(keys)
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(name: str, path: str, key: str, record: bool) -> None:
            sent = time.perf_counter()
            try:
                async with http.get(base + path, headers={"Authorization": f"Token {key}"}) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                status = type(error).__name__
            ms = (time.perf_counter() - sent) * 1000
            if not record:
                return
            if status == 200:
                results[name]["ms"].append(ms)
            else:
                results[name]["errors"][status] = results[name]["errors"].get(status, 0) + 1

        tasks = []
        total = int(rate * (seconds + warmup))
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name = names[i % len(names)]
            tasks.append(asyncio.create_task(one(name, next(cycles[name]), next(users), record=i >= rate * warmup)))
        await asyncio.gather(*tasks)
        results["_wall"] = time.perf_counter() - start
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (default 5)")
    parser.add_argument("--server", choices=["daphne", "gunicorn"], default="daphne")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--analytics-rate", type=float, default=2.0,
                        help="requests per second to the analytics endpoints, measured apart (default 2)")
    parser.add_argument("--analytics-seconds", type=float, default=20.0)
    parser.add_argument("--reseed", action="store_true", help="delete and seed the rows again")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("set DATABASE_URL to a PostgreSQL database (created if missing)")
    if not os.environ.get("REDIS_URL"):
        print("warning: REDIS_URL unset: the throttles count in each process's memory, not in Redis as in production")
    os.environ.update(SERVER_ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    database_create_if_missing(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    seed(args.reseed)
    keys = tokens()
    paths = endpoints()
    connection.close()

    port = free_port()
    server = server_start(args.server, port, args.workers, args.threads)
    try:
        load_before = os.getloadavg()[0]
        cpu_before, own_before = cpu_seconds(server.pid), time.process_time()
        reads = asyncio.run(load(port, paths, keys, rate=args.rate, seconds=args.seconds, warmup=args.warmup))
        cpu, own = cpu_seconds(server.pid) - cpu_before, time.process_time() - own_before
        load_after = os.getloadavg()[0]
        figures = asyncio.run(load(port, ANALYTICS, keys, rate=args.analytics_rate, seconds=args.analytics_seconds,
                                   warmup=2))
    finally:
        server_stop(server)
    wall = reads.pop("_wall")
    figures.pop("_wall")
    server_desc = "daphne, 1 process" if args.server == "daphne" else (
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads")
    print(f"{server_desc}; {args.rate:g} requests/s for {args.seconds:g} s after {args.warmup:g} s of warm-up, "
          f"{len(paths)} endpoints in turn, {USERS} tokens")
    print(f"server CPU: {cpu / wall * 100:.0f} % of one core over the run ({cpu:.1f} s in {wall:.1f} s, "
          f"{cpu / (args.rate * (args.seconds + args.warmup)) * 1000:.1f} ms a request); load generator "
          f"{own / wall * 100:.0f} %; load average {load_before:.1f} before, {load_after:.1f} after")
    report(reads, "all list and detail reads", "(target p95 <= 50 ms)")
    print(f"\nanalytics alone, {args.analytics_rate:g} requests/s for {args.analytics_seconds:g} s:")
    report(figures, "all analytics", "")


def report(results: dict[str, dict], total: str, target: str) -> None:
    print(f"{'endpoint':36} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  errors")
    everything = []
    for name, result in results.items():
        ms = result["ms"]
        everything += ms
        errors = ", ".join(f"{status}: {n}" for status, n in result["errors"].items()) or "-"
        if ms:
            print(f"{name:36} {len(ms):5d} {statistics.median(ms):8.1f} {percentile(ms, 0.95):8.1f} {max(ms):8.1f}  "
                  f"{errors}")
        else:
            print(f"{name:36} {0:5d} {'-':>8} {'-':>8} {'-':>8}  {errors}")
    if everything:
        print(f"{total:36} {len(everything):5d} {statistics.median(everything):8.1f} "
              f"{percentile(everything, 0.95):8.1f} {max(everything):8.1f}  {target}")


if __name__ == "__main__":
    main()
