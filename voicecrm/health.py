"""Probes for /healthz/ready: each returns None when healthy or a short error (for logs and staff).

The channel layer is probed without competing with consumers. A round trip through a
process-local channel (`new_channel()`, "specific.…!…") waits behind the layer's shared receive
loop, which a connected consumer holds; with any WebSocket open it timed out, and /healthz
said 503 on a healthy server. So the Redis layer gets a PING on each of its hosts with the
layer's own connection settings, and other layers a send/receive on a dedicated, plain channel.
"""

import asyncio
import uuid

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from voicecrm.celery import app

PROBE_TIMEOUT_SECONDS = 2.0


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def database_probe() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _error(exc)
    return None


def _redis_client(host: dict) -> redis.Redis:
    """A synchronous client for one channels_redis host entry (URL, host/port, or sentinel)."""
    options = {k: v for k, v in host.items() if k not in ("address", "master_name", "sentinels", "sentinel_kwargs")}
    options.update(socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS)
    if "master_name" in host:
        sentinel = redis.sentinel.Sentinel(host["sentinels"], sentinel_kwargs=host.get("sentinel_kwargs"),
                                           socket_timeout=PROBE_TIMEOUT_SECONDS)
        return sentinel.master_for(host["master_name"], **options)
    if "address" in host:
        return redis.Redis.from_url(host["address"], **options)
    return redis.Redis(**options)


def _redis_layer_ping(layer) -> None:
    for host in layer.hosts:  # decoded by channels_redis: one dict per host
        client = _redis_client(host)
        try:
            client.ping()
        finally:
            client.close()


async def _channel_round_trip(layer) -> None:
    # A plain channel name of its own: receiving on it never waits for a consumer's receive loop.
    channel = f"healthz.{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(channel), PROBE_TIMEOUT_SECONDS)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")


def channel_layer_probe() -> str | None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return "no channel layer configured"
        if hasattr(layer, "hosts") and type(layer).__module__.startswith("channels_redis."):
            _redis_layer_ping(layer)
        else:
            async_to_sync(_channel_round_trip)(layer)
    except TimeoutError:
        return "timed out"
    except Exception as exc:
        return _error(exc)
    return None


def broker_probe() -> str | None:
    """None when Celery runs eagerly: there is no broker to reach."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:
        return _error(exc)
    return None


def health_report() -> tuple[bool, dict[str, dict[str, str]]]:
    """Readiness: can this process serve a call now? Each check is {"status": "up"} or
    {"status": "down", "error": "..."} (the error is for logs and staff only)."""
    checks = {"database": database_probe, "channel_layer": channel_layer_probe}
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = broker_probe
    report: dict[str, dict[str, str]] = {}
    for name, probe in checks.items():
        error = probe()
        report[name] = {"status": "down", "error": error} if error else {"status": "up"}
    healthy = all(item["status"] == "up" for item in report.values())
    return healthy, report
