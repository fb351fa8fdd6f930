"""A real daphne server for the browser tests, in a *spawned* process.

Not forked: by the time these tests run, the test process may have loaded Whisper and Piper
and started the speech executor's threads, and a forked child would inherit a thread pool
without threads. The child starts clean, points Django at the test database, loads the speech
models once, and serves the project's ASGI application (static files included) with the same
websocket message limit production uses.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback

_spawn = multiprocessing.get_context("spawn")


class LiveDaphne(_spawn.Process):
    def __init__(self, *, host: str, database_name: str, sample_rates: tuple[int, ...] = (48000,)) -> None:
        super().__init__(daemon=True, name="live-daphne")
        self.host = host
        self.database_name = database_name
        self.sample_rates = sample_rates
        self.port = _spawn.Value("i", 0)
        self.ready = _spawn.Event()
        self.errors = _spawn.Queue()

    def run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            self.errors.put(f"{exc!r}\n{traceback.format_exc()}")
            raise

    def _serve(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
        # Post-call work is not under test here: keep its tasks in an in-memory broker.
        os.environ["CELERY_BROKER_URL"] = "memory://"
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
        import django

        django.setup()
        from django.conf import settings

        settings.DATABASES["default"]["NAME"] = self.database_name  # before any connection opens

        from calls.session import session_warm_up

        session_warm_up(sample_rates=self.sample_rates)

        from channels.routing import get_default_application
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from twisted.internet import reactor

        server = Server(
            application=ASGIStaticFilesHandler(get_default_application()),
            endpoints=build_endpoint_description_strings(host=self.host, port=0),
            signal_handlers=False,
            websocket_max_message_size=settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE,
            verbosity=0,
        )

        def publish_port() -> None:
            if server.listening_addresses:
                self.port.value = server.listening_addresses[0][1]
                self.ready.set()
            else:
                reactor.callLater(0.1, publish_port)

        reactor.callLater(0.1, publish_port)
        server.run()

    def wait_ready(self, timeout: float = 120.0) -> int:
        if not self.ready.wait(timeout):
            error = self.errors.get(timeout=1) if not self.errors.empty() else "no error reported"
            raise RuntimeError(f"daphne did not start: {error}")
        return self.port.value

    def stop(self) -> None:
        self.terminate()
        self.join(10)
