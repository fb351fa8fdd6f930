"""Small helpers for what the agent says: sentence splitting, money and dates read aloud."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone

# A sentence ends at . ! ? followed by a space, unless the dot belongs to an abbreviation
# ("Mr.", "a.m.", "e.g.") or sits inside a number ("$42.50", "3.5").
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "approx", "dept", "ave"}
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$£€])")


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences so speech synthesis can start on the first one."""
    text = re.sub(r"\s+", " ", (text or "")).strip()
    if not text:
        return []
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start:m.start()].strip()
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".!?\"')]").lower()
        if candidate.endswith(".") and last_word in _ABBREVIATIONS:
            continue
        if candidate:
            out.append(candidate)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


class SentenceBuffer:
    """Collects streamed text and hands back whole sentences as soon as they are complete."""

    def __init__(self) -> None:
        self._text = ""

    def feed(self, chunk: str) -> list[str]:
        self._text += chunk
        parts = split_sentences(self._text)
        if len(parts) <= 1:
            return []
        # The last part may still grow; keep it (with any trailing space) for later.
        done = parts[:-1]
        self._text = parts[-1] + (" " if self._text.endswith(" ") else "")
        return done

    def flush(self) -> list[str]:
        parts = split_sentences(self._text)
        self._text = ""
        return parts


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
