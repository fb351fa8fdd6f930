"""Serve FastAGI for Asterisk's dialplan: call routing, answering-machine results, transfers and
hang-ups (telephony/asterisk/fastagi.py, docs/asterisk.md).

    manage.py run_fastagi [--bind 0.0.0.0] [--port 4573]

Runs until SIGTERM or SIGINT, then lets running steps finish for a few seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telephony.asterisk.fastagi import FastAgiServer


class Command(BaseCommand):
    help = "Serve FastAGI for Asterisk (call routing, AMD results, transfers, hang-ups)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bind", default=settings.FASTAGI_BIND, help="Address to listen on (FASTAGI_BIND).")
        parser.add_argument("--port", type=int, default=settings.FASTAGI_PORT, help="TCP port (FASTAGI_PORT).")

    def handle(self, *args, bind: str, port: int, **options) -> None:
        try:
            server = FastAgiServer(host=bind, port=port)
        except ValueError as error:
            raise CommandError(f"FASTAGI_ALLOWED_NETWORKS: {error}") from None
        if not server.allowed and not _is_loopback(bind):
            self.stderr.write(self.style.WARNING(
                f"FastAGI listens on {bind} and serves any peer: set FASTAGI_ALLOWED_NETWORKS to the PBX's "
                f"address, or firewall port {port} (docs/security.md)."))
        try:
            asyncio.run(self._serve(server))
        except OSError as error:
            raise CommandError(f"cannot listen on {bind}:{port}: {error}") from None

    async def _serve(self, server: FastAgiServer) -> None:
        await server.start()
        self.stdout.write(f"FastAGI listening on {server.host}:{server.port}")
        self.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()
        self.stdout.write(f"FastAGI stopped: {dict(server.stats)}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
