"""Serve Asterisk's AudioSocket connections: one voice session per call (docs/asterisk.md).

    manage.py run_audiosocket [--bind 0.0.0.0] [--port 9092]

Defaults come from AUDIOSOCKET_BIND and AUDIOSOCKET_PORT. The speech models and the phrases of
the agents Asterisk reaches are loaded before the port opens, so the first caller does not wait
for them. SIGTERM (or Ctrl-C) drains: new calls hear that everyone is busy, live calls a short
goodbye, and the process exits once they are stored or SHUTDOWN_GRACE_SECONDS have passed; a
second signal stops at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from agents.models import AgentConfig
from calls.session import session_warm_up
from telephony.asterisk.server import REFUSAL_RATES, AudioSocketServer
from telephony.models import Route

logger = logging.getLogger("telephony.asterisk.server")


class Command(BaseCommand):
    help = "Serve Asterisk AudioSocket connections (one voice session per call)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bind", default=None, help=f"Address to listen on (default {settings.AUDIOSOCKET_BIND}).")
        parser.add_argument("--port", type=int, default=None,
                            help=f"TCP port (default {settings.AUDIOSOCKET_PORT}; 0 picks a free one).")

    def handle(self, *args, bind: str | None, port: int | None, **options) -> None:
        host = settings.AUDIOSOCKET_BIND if bind is None else bind
        port = settings.AUDIOSOCKET_PORT if port is None else port
        if not settings.AUDIOSOCKET_ALLOWED_NETWORKS and not _loopback(host):
            logger.warning("AudioSocket listens on %s with no AUDIOSOCKET_ALLOWED_NETWORKS: any peer that reaches "
                           "the port can start calls. List the PBX's address, or firewall the port.", host)
        logger.info("loading the speech models")
        agents = list(AgentConfig.objects.filter(
            active=True, routes__kind=Route.Kind.ASTERISK_EXTENSION, routes__active=True).distinct())
        session_warm_up(agents=agents, sample_rates=REFUSAL_RATES)
        server = AudioSocketServer(host=host, port=port)
        server.prepare()
        connection.close()  # the calls open their own
        asyncio.run(self._serve(server))

    async def _serve(self, server: AudioSocketServer) -> None:
        await server.start()
        logger.info("AudioSocket server listening on %s", ", ".join(server.addresses))
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        draining: list[asyncio.Task] = []

        def on_signal(signum: int) -> None:
            if draining:
                logger.warning("second %s: stopping now", signal.Signals(signum).name)
                stopped.set()
                return
            logger.info("%s: draining live calls (up to %d s)", signal.Signals(signum).name, settings.SHUTDOWN_GRACE_SECONDS)
            draining.append(asyncio.create_task(server.drain(settings.SHUTDOWN_GRACE_SECONDS)))
            draining[0].add_done_callback(lambda _: stopped.set())

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        await stopped.wait()
        if not draining[0].done():
            draining[0].cancel()
        await server.close(timeout=2.0)
        logger.info("AudioSocket server stopped")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
