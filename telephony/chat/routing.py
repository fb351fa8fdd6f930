from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host
from django.urls import path

from telephony.chat.consumers import ChatConsumer


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def origin_trusted(scope: dict) -> bool:
    """The rule Django's CSRF check applies to a form post, for a websocket: the Origin is this
    site itself (scheme, host and port of the request, the host in ALLOWED_HOSTS) or is listed in
    CSRF_TRUSTED_ORIGINS. Channels' AllowedHostsOriginValidator compares the host only, so a page
    on any other port of the same host (another app, a dev server) could open a staff session."""
    origin = _header(scope, b"origin").lower().rstrip("/")
    if not origin:
        return False
    host = (settings.USE_X_FORWARDED_HOST and _header(scope, b"x-forwarded-host").split(",")[0].strip()) or _header(scope, b"host")
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    domain, _ = split_domain_port(host.lower())
    if domain and validate_host(domain, settings.ALLOWED_HOSTS) and origin == f"{scheme}://{host.lower()}":
        return True
    parts = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted = trusted.lower().rstrip("/")
        if "*" in trusted:
            allowed = urlsplit(trusted)
            if parts.scheme == allowed.scheme and is_same_domain(parts.netloc, allowed.netloc.lstrip("*")):
                return True
        elif origin == trusted:
            return True
    return False


class SameOriginValidator:
    """Refuses the websocket handshake (HTTP 403) unless `origin_trusted`."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if not origin_trusted(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


websocket_urlpatterns = [
    path("ws/chat/<slug:slug>/", SameOriginValidator(ChatConsumer.as_asgi())),
]
