"""System checks for the Twilio channel.

`twilio_credentials_check` is static (every `manage.py check`): half-set credentials, or
credentials without an https PUBLIC_BASE_URL. `twilio_settings_check` reads the routes, so it is
a database check (as Django's own): `manage.py migrate` and `manage.py check --database default`
run it; it warns about settings that only fail once phone numbers are routed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

from telephony.models import Route
from telephony.selectors import route_list_active


def _not_https() -> bool:
    return not settings.DEBUG and urlsplit(settings.PUBLIC_BASE_URL).scheme != "https"


@register()
def twilio_credentials_check(app_configs=None, **kwargs) -> list[Warning]:
    warnings = []
    if bool(settings.TWILIO_ACCOUNT_SID) != bool(settings.TWILIO_AUTH_TOKEN):
        warnings.append(Warning("Only one of TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN is set.",
                                hint="Set both to use Twilio numbers, or neither.", id="telephony.W003"))
    if settings.TWILIO_ACCOUNT_SID and _not_https():
        warnings.append(Warning(
            f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not https: Twilio webhooks need https, Media Streams "
            "wss, and their signatures are checked against this URL.",
            hint="Set PUBLIC_BASE_URL to the public https origin configured in Twilio (docs/twilio.md).",
            id="telephony.W002",
        ))
    return warnings


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
    # With credentials set the static check has said it already.
    if _not_https() and not settings.TWILIO_ACCOUNT_SID:
        warnings.append(Warning(
            f"PUBLIC_BASE_URL ({settings.PUBLIC_BASE_URL}) is not https, but phone numbers are routed: Twilio "
            "webhooks need https, Media Streams wss, and their signatures are checked against this URL.",
            hint="Set PUBLIC_BASE_URL to the public https origin configured in Twilio (docs/twilio.md).",
            id="telephony.W002",
        ))
    return warnings
