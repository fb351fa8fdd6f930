"""Reachability probes for /healthz: each returns None when healthy or a short error."""

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from voicecrm.celery import app

PROBE_TIMEOUT_SECONDS = 2.0


def database_probe() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


async def _channel_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel(prefix="healthz")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")


def channel_layer_probe() -> str | None:
    async def probe() -> None:
        await asyncio.wait_for(_channel_round_trip(), PROBE_TIMEOUT_SECONDS)

    try:
        async_to_sync(probe)()
    except TimeoutError:
        return "timed out"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def broker_probe() -> str | None:
    """None when Celery runs eagerly: there is no broker to reach."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def health_report() -> tuple[bool, dict[str, dict[str, str]]]:
    checks = {"database": database_probe, "channel_layer": channel_layer_probe}
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = broker_probe
    report: dict[str, dict[str, str]] = {}
    for name, probe in checks.items():
        error = probe()
        report[name] = {"status": "down", "error": error} if error else {"status": "up"}
    healthy = all(item["status"] == "up" for item in report.values())
    return healthy, report
