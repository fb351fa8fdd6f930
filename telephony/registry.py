"""Providers by name, each a dotted path in settings.TELEPHONY_PROVIDERS (as EMAIL_BACKEND)."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from telephony.base import TelephonyError, TelephonyProvider


def get_provider(name: str) -> TelephonyProvider:
    """A new provider for `name` (e.g. "twilio"); TelephonyError(permanent) if none is configured."""
    path = getattr(settings, "TELEPHONY_PROVIDERS", {}).get(name)
    if not path:
        raise TelephonyError(f"No telephony provider is configured for {name!r}.", permanent=True)
    return import_string(path)()
