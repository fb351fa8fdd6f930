from django.urls import re_path

from telephony.browser.consumers import VoiceWidgetConsumer

# Public: embedded on customers' sites, so not behind the host check (the consumer checks the
# Origin against the widget key's allowed origins).
widget_urlpatterns = [
    re_path(r"^ws/voice/(?P<key>[-\w]{1,64})/$", VoiceWidgetConsumer.as_asgi()),
]
