"""WebSocket routes of every app, gathered in one place for asgi.py."""

from telephony.browser.routing import widget_urlpatterns
from telephony.chat.routing import websocket_urlpatterns as agent_websockets

# Same-site websockets (dashboard, admin panels): asgi.py puts them behind AllowedHostsOriginValidator.
websocket_urlpatterns: list = [*agent_websockets]

# Embedded on other sites (the browser widget): no host check here; each consumer checks the
# Origin against its own allow-list (a widget key's allowed origins).
public_websocket_urlpatterns: list = [*widget_urlpatterns]
