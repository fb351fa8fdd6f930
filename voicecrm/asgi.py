import asyncio
import logging
import os
import signal
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from calls.session import live  # noqa: E402
from calls.sweeps import call_sweeper_start  # noqa: E402
from voicecrm.routing import public_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402

logger = logging.getLogger(__name__)


class GracefulShutdown:
    """Live calls end politely when the server stops, instead of being cut off mid-sentence.

    Two ways in, whichever the server offers:
    - the ASGI lifespan protocol (uvicorn, hypercorn): `lifespan.shutdown` drains first;
    - daphne (4.2) has no lifespan protocol, and on SIGTERM its reactor stops and cancels every
      connection at once. So on the first request or connection (the server's event loop is
      running by then, and its own handler is installed) this takes over SIGTERM: drain the
      live calls (`live.drain(SHUTDOWN_GRACE_SECONDS)`: a short goodbye, then the call is stored
      and finalized), then hand the signal to the server's own handler. A second SIGTERM stops
      the server at once.
    """

    def __init__(self, app) -> None:
        self.app = app
        self._installed = False
        self._drain: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if not self._installed:
            self._installed = True
            self._install_sigterm()
            if settings.CELERY_TASK_ALWAYS_EAGER:
                # Embedded mode has no beat: the serving process sweeps for calls whose process
                # died, at start and every CALL_SWEEP_SECONDS (calls/sweeps.py).
                call_sweeper_start()
        return await self.app(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await live.drain(settings.SHUTDOWN_GRACE_SECONDS)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (test servers run elsewhere)
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame) -> None:
            loop.call_soon_threadsafe(self._on_sigterm, previous, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _on_sigterm(self, previous, signum, frame) -> None:
        if self._drain is not None:
            logger.warning("second SIGTERM: stopping now")
            self._stop(previous, signum, frame)
            return
        self._drain = asyncio.ensure_future(live.drain(settings.SHUTDOWN_GRACE_SECONDS))
        self._drain.add_done_callback(lambda _: self._stop(previous, signum, frame))

    @staticmethod
    def _stop(previous, signum, frame) -> None:
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL (or SIG_IGN, which a SIGTERM sent on purpose should not be): exit as if unhandled
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


application = GracefulShutdown(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                # Checked per route by their consumers (the widget: its key's allowed origins).
                *public_websocket_urlpatterns,
                # Everything else only from our own hosts.
                re_path(r"^", AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
            ]
        ),
    }
))
