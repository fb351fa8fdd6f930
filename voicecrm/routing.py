"""WebSocket routes of every app, gathered in one place for asgi.py."""

from agents.routing import websocket_urlpatterns as agent_websockets
websocket_urlpatterns: list = [*agent_websockets]
