"""Phone numbers are stored in E.164 ("+14155550123") so caller ID lookups are exact."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

E164_REGEX = r"^\+[1-9][0-9]{6,14}$"


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """Return `raw` in E.164, or raise ValidationError naming the bad value."""
    text = (raw or "").strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(f"{raw!r} is not a phone number.", code="invalid_phone") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{raw!r} is not a valid phone number.", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_or_none(raw: str) -> str | None:
    """Lenient variant for caller ID, which may be "anonymous" or a SIP URI."""
    try:
        return normalize_phone(raw) or None
    except ValidationError:
        return None


class PhoneField(models.CharField):
    """A CharField stored in E.164: forms, full_clean() and every write normalize through to_python()."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return normalize_phone(value) if value else value
