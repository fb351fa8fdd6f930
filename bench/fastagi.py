"""FastAGI figures: how long the dialplan waits for each step, alone and with many calls at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voicecrm_dev .venv/bin/python bench/fastagi.py [--calls 200] [--concurrency 20]

The real server (telephony/asterisk/fastagi.py) runs in a thread, on a throwaway copy of the
database (test_<name>, created and dropped here) holding one routed extension, a caller who is a
customer with open tickets, and nothing else. A client that speaks like Asterisk's AGI()
(telephony/asterisk/tests/pbx.py) times each step from connecting to the server closing the
connection, which is when the dialplan goes on: `route` (a new Call, five SET VARIABLEs), then
`after` and `hangup` for the same call (the call ended without a transfer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
os.environ.setdefault("DEBUG", "1")
# Calls end here; their post-call analysis is not measured.
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(port: int, script: str, unique_id: str, variables: dict | None = None) -> tuple[float, dict]:
    """One step as the dialplan sees it: from connecting to the server closing. (ms, variables)"""
    from telephony.asterisk.tests.pbx import FakeChannel, agi_environment

    channel = FakeChannel(port, variables=dict(variables or {}), dead=script == "hangup")
    began = time.perf_counter()
    channel.run(agi_environment(port=port, script=script, uniqueid=unique_id, callerid="+14155552671"))
    return (time.perf_counter() - began) * 1000, channel.variables


def call_ends(call_uuid: str) -> None:
    """What the voice session does between `route` and `after`: answer the call, then end it."""
    from calls.models import Call
    from calls.services import call_connect, call_finalize

    call = Call.objects.get(public_id=call_uuid)
    call_connect(call_id=call.pk)
    call_finalize(call_id=call.pk, end_reason="agent_end")


def run(calls: int, concurrency: int) -> None:
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from agents.models import AgentConfig
    from customers.models import Customer
    from telephony.asterisk.fastagi import FastAgiServer
    from telephony.models import Route
    from tickets.services import ticket_create

    if connection.vendor != "postgresql":
        print(f"warning: measuring on {connection.vendor}; set DATABASE_URL to PostgreSQL for the recorded figures")
    old = setup_databases(verbosity=0, interactive=False)
    loop = asyncio.new_event_loop()
    server = FastAgiServer(host="127.0.0.1", port=0, allowed_networks=[])
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    try:
        agent = AgentConfig.objects.create(slug="front-desk", name="Front desk")
        Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7000", agent=agent)
        customer = Customer.objects.create(first_name="Ada", last_name="Caller", phone="+14155552671")
        for subject in ("Router drops", "Billing question"):
            ticket_create(subject=subject, customer=customer)
        connection.close()
        thread.start()
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)

        # Warm-up: imports, the server's database threads, PostgreSQL's caches.
        for number in range(5):
            timed(server.port, "route", f"1733039999.{number}")

        for label, workers in (("one call at a time", 1), (f"{concurrency} calls at once", concurrency)):
            ids = [f"1733040{workers:03d}.{number}" for number in range(calls)]
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(lambda unique_id: timed(server.port, "route", unique_id), ids))
            wall = time.perf_counter() - started
            assert all(variables.get("VOICECRM_ROUTE") == "ok" for _, variables in results)
            route_ms = [ms for ms, _ in results]
            print(f"route, {label}: {calls} calls in {wall:.2f} s ({calls / wall:.0f} calls/s); "
                  f"p50 {statistics.median(route_ms):.1f} ms   p95 {percentile(route_ms, 0.95):.1f} ms   "
                  f"max {max(route_ms):.1f} ms")

        # Each step of a whole inbound call, one call at a time.
        steps: dict[str, list[float]] = {"route": [], "after": [], "hangup": []}
        for number in range(max(1, calls // 4)):
            unique_id = f"1733041000.{number}"
            ms, variables = timed(server.port, "route", unique_id)
            steps["route"].append(ms)
            call_ends(variables["VOICECRM_CALL_UUID"])
            for step in ("after", "hangup"):
                steps[step].append(timed(server.port, step, unique_id, variables)[0])
        for step, values in steps.items():
            print(f"{step:6s} of a whole call ({len(values)} calls): p50 {statistics.median(values):.1f} ms   "
                  f"p95 {percentile(values, 0.95):.1f} ms")
        print(f"server stats: {dict(server.stats)}")
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        connection.close()
        teardown_databases(old, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    import django

    django.setup()
    run(args.calls, args.concurrency)


if __name__ == "__main__":
    main()
