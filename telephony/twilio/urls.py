"""Twilio's webhook URLs, under /telephony/twilio/ (docs/twilio.md). The Media Streams socket is
routed separately (routing.py)."""

from django.urls import path

from telephony.twilio import views

urlpatterns = [
    path("voice/", views.voice, name="twilio-voice"),
    path("status/", views.status, name="twilio-status"),
    path("amd/", views.amd, name="twilio-amd"),
]
