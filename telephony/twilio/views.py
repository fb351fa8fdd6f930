"""Twilio's webhooks: the incoming-call URL, status callbacks and answering-machine detection.

Thin: webhooks.py verifies and parses (413, 403, 400 before anything is written), services.py
decides. Twilio posts form data and reads TwiML (text/xml) back; it signs instead of sending a
CSRF token.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telephony.twilio import services, webhooks
from telephony.twilio.client import twiml_empty

logger = logging.getLogger(__name__)


def _twiml(xml: str, status: int = 200) -> HttpResponse:
    return HttpResponse(xml, content_type="text/xml; charset=utf-8", status=status)


def _refused(what: str, rejected: webhooks.WebhookRejected) -> HttpResponse:
    logger.warning("Twilio %s refused (%s): %s", what, rejected.status, rejected.reason)
    return rejected.response()


@csrf_exempt
@require_POST
def voice(request):
    """A call to one of our numbers: connect it to the number's agent (Connect/Stream TwiML)."""
    try:
        hook = webhooks.voice_webhook(request)
    except webhooks.WebhookRejected as rejected:
        return _refused("voice webhook", rejected)
    return _twiml(services.twilio_inbound_answer(hook=hook))


@csrf_exempt
@require_POST
def status(request):
    """A call moved on (ringing, answered, completed, busy…)."""
    try:
        hook = webhooks.status_callback(request)
    except webhooks.WebhookRejected as rejected:
        return _refused("status callback", rejected)
    call = services.twilio_status_apply(hook=hook)
    return _twiml(twiml_empty(), status=200 if call is not None else 404)


@csrf_exempt
@require_POST
def amd(request):
    """Answering-machine detection's verdict on an outbound call."""
    try:
        hook = webhooks.amd_callback(request)
    except webhooks.WebhookRejected as rejected:
        return _refused("AMD callback", rejected)
    done = services.twilio_amd_apply(hook=hook)
    return _twiml(twiml_empty(), status=200 if done is not None else 404)
