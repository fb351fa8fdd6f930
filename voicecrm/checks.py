"""System checks for settings that only fail when a feature is used."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def telephony_settings_check(app_configs, **kwargs):
    errors = []
    if bool(settings.TWILIO_ACCOUNT_SID) != bool(settings.TWILIO_AUTH_TOKEN):
        errors.append(
            Warning(
                "Only one of TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN is set.",
                hint="Set both to use Twilio numbers, or neither.",
                id="voicecrm.W001",
            )
        )
    if settings.PUBLIC_BASE_URL.startswith("http://") and not settings.DEBUG and settings.TWILIO_ACCOUNT_SID:
        errors.append(
            Warning(
                "PUBLIC_BASE_URL is not https: Twilio webhooks and media streams need TLS.",
                id="voicecrm.W002",
            )
        )
    return errors
