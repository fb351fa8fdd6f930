"""The Twilio channel's WebSocket route: the Media Streams consumer at security.STREAM_PATH."""

from django.urls import re_path

from telephony.twilio.consumers import MediaStreamConsumer

# Public: Twilio sends no Origin header, so no host or origin check here; the consumer checks
# X-Twilio-Signature on the upgrade, then the call's stream token in `start`.
media_urlpatterns = [
    re_path(r"^ws/telephony/twilio/media/$", MediaStreamConsumer.as_asgi()),
]
