"""System checks for the Twilio channel: settings that only fail once phone numbers are routed.

They read the routes, so they are database checks (as Django's own): `manage.py migrate` and
`manage.py check --database default` run them; a plain `check` stays static.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

from telephony.models import Route
from telephony.selectors import route_list_active


@register(Tags.database)
def twilio_settings_check(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    if not databases or "default" not in databases:
        return []
    try:
        routes = route_list_active(kind=Route.Kind.PHONE_NUMBER).count()
    except DatabaseError:
        return []  # not migrated yet: nothing is routed
    if not routes:
        return []
    warnings = []
    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)]
    if missing:
        warnings.append(Warning(
            f"{routes} active phone-number route(s), but {' and '.join(missing)} not set: Twilio's calls to them "
            "are refused (403) and no outbound call can be placed.",
            hint="Set the account's credentials (docs/twilio.md), or deactivate the routes.",
            id="telephony.W001",
        ))
    if not settings.DEBUG and urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        warnings.append(Warning(
            f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not https, but phone numbers are routed: Twilio "
            "webhooks need https, Media Streams wss, and their signatures are checked against this URL.",
            hint="Set PUBLIC_BASE_URL to the public https origin configured in Twilio (docs/twilio.md).",
            id="telephony.W002",
        ))
    return warnings
