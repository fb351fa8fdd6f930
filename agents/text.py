"""Small helpers for what the agent says: money, dates and lists read aloud (sentences: core/text.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone


def money_text(amount: Decimal | float | str) -> str:
    """ "$42.50", "$1,200", "a credit of $20.00" is left to the caller of this helper."""
    value = Decimal(str(amount))
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == value.to_integral_value():
        return f"{sign}${value:,.0f}"
    return f"{sign}${value:,.2f}"


def datetime_text(value: dt.datetime) -> str:
    """ "Tuesday 7 January at 10:00 AM", in the business time zone."""
    local = timezone.localtime(value)
    hour = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%A} {local.day} {local:%B} at {hour}"


def time_text(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%I:%M %p").lstrip("0")


def join_words(items: list[str], conjunction: str = "or") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
