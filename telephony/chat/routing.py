from django.urls import path

from telephony.chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<slug:slug>/", ChatConsumer.as_asgi()),
]
