"""WebSocket routes of every app, gathered in one place for asgi.py."""

from django.urls import re_path

from telephony.browser.routing import widget_urlpatterns
from telephony.chat.routing import websocket_urlpatterns as agent_websockets
from telephony.twilio.routing import media_urlpatterns as twilio_media_websockets
from voicecrm.consumers import UnknownPathConsumer

# Same-site websockets (dashboard, admin panels): asgi.py puts them behind AllowedHostsOriginValidator.
# Last, every other path: closed with 4404 instead of a routing error (a 500 and a traceback).
websocket_urlpatterns: list = [*agent_websockets, re_path(r"", UnknownPathConsumer.as_asgi())]

# Embedded on other sites (the browser widget): no host check here; each consumer checks the
# Origin against its own allow-list (a widget key's allowed origins).
public_websocket_urlpatterns: list = [*widget_urlpatterns, *twilio_media_websockets]  # Twilio: signature-checked
