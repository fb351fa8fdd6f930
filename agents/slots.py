"""Entities the flows can ask for, by name: each turns caller text into a JSON-serializable value.

Flows name these in `"entity"` (ask steps) and in `"slots"`; the extractors come from agents.nlu
(normalization, contact details, dates, finance vocabulary), a few that need the database or the
conversation so far (services, offered slots, order numbers), and the scenario packs' own
(agents/scenarios/<slug>/recognizers.py: a driver's status, emergencies...).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from rapidfuzz import fuzz, process

from agents.nlu import entities as nlu
from agents.nlu.normalize import normalize
from agents.scenarios import scenario_entities
from customers.models import Service


@dataclass
class Env:
    """What an extractor may look at besides the text."""

    state: dict = field(default_factory=dict)
    now: dt.datetime = field(default_factory=timezone.now)
    dtmf: str = ""

    @property
    def tz(self):
        return timezone.get_current_timezone()


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _when(value) -> dict | None:
    if value is None:
        return None
    local = timezone.localtime(value.at)
    # "time" is empty when none was said, so a tool is not asked about 09:00 by default.
    return {"iso": local.isoformat(), "date": local.date().isoformat(), "time": local.strftime("%H:%M") if value.has_time else "",
            "has_date": value.has_date, "has_time": value.has_time}


def _name(text: str, env: Env) -> dict | None:
    found = nlu.extract_name(text)
    if found is None:
        # Asked "what's your name?", callers just say it: "John Smith", "it's jane".
        words = re.sub(r"^(?:it is|its|it's|this is|i am|i'm|yes|yeah|sure|ok|okay)\s+", "", text.strip(), flags=re.I)
        words = re.sub(r"[^A-Za-z' -]", " ", words).split()
        blocked = {"no", "yes", "not", "sorry", "what", "why", "the", "my", "i", "you", "hello", "hi", "um", "uh", "help"}
        if 1 <= len(words) <= 3 and not any(w.lower() in blocked for w in words) and all(len(w) > 1 for w in words):
            found = nlu.PersonName(first=words[0].capitalize(), last=" ".join(w.capitalize() for w in words[1:]) or None)
    if found is None or not found.first and not found.last:
        return None
    return {"first": found.first or "", "last": found.last or "", "full": found.full}


# Acknowledgements drivers and callers use that are a yes to "will you…?".
_ACKNOWLEDGE = re.compile(r"^(?:will do|wilco|roger(?: that)?|copy(?: that)?|got it|sure thing|i will|ok will do|okay will do|"
                          r"no problem|understood|can do|10 4|ten four)\b")


def _yes_no(text: str, env: Env) -> str | None:
    if env.dtmf in ("1", "2"):
        return "yes" if env.dtmf == "1" else "no"
    answer = nlu.extract_yes_no(text)
    if answer is None and _ACKNOWLEDGE.search(normalize(text)):
        return "yes"
    return str(answer) if answer is not None else None


def _money(text: str, env: Env) -> int | float | None:
    found = nlu.extract_money(text, require_currency=False)
    return _number(found.amount) if found is not None else None


def _income(text: str, env: Env) -> int | float | None:
    """Monthly income, whatever period the caller used."""
    found = nlu.extract_income(text)
    if found is None:
        money = nlu.extract_money(text, require_currency=False)
        if money is None:
            return None
        found = nlu.Income(amount=money.amount, period=nlu.IncomePeriod.MONTHLY if money.amount < 20000 else nlu.IncomePeriod.YEARLY)
    return _number(found.monthly())


def _debt_types(text: str, env: Env) -> str | None:
    types = nlu.extract_debt_types(text)
    return ", ".join(str(t) for t in types) if types else None


def _service(text: str, env: Env) -> str | None:
    services = dict(Service.objects.filter(active=True).values_list("slug", "name"))
    if not services:
        return None
    s = normalize(text)
    for slug, name in services.items():
        if name.lower() in s or slug.replace("-", " ") in s:
            return slug
    choices = {slug: name.lower() for slug, name in services.items()}
    # Callers say "a repair", "the installation": match the distinctive word of the service name.
    for slug, name in choices.items():
        for word in name.split():
            if len(word) > 4 and re.search(rf"\b{re.escape(word[:5])}", s):
                return slug
    match = process.extractOne(s, choices, scorer=fuzz.partial_ratio)
    return match[2] if match and match[1] >= 85 else None


def _slot_choice(text: str, env: Env) -> str | None:
    """One of the times offered by the last check_availability: "the first one", "eleven", "yes"."""
    offered = [s["starts_at"] for s in (env.state.get("results", {}).get("check_availability", {}).get("slots") or [])]
    if not offered:
        return None
    s = normalize(text, digits=True)
    ordinals = {"first": 0, "earliest": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1, "latest": -1}
    for word, index in ordinals.items():
        if re.search(rf"\b{word}\b", s) and abs(index) <= len(offered):
            return offered[index]
    when = nlu.extract_datetime(text, now=env.now, tz=env.tz)
    if when is not None and when.has_time:
        for iso in offered:
            offered_at = timezone.localtime(dt.datetime.fromisoformat(iso))
            if (offered_at.hour, offered_at.minute) == (when.at.hour, when.at.minute):
                return iso
    m = re.search(r"\b(\d{1,2})(?::(\d{2}))?\b", s)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        for iso in offered:
            offered_at = timezone.localtime(dt.datetime.fromisoformat(iso))
            if offered_at.minute == minute and offered_at.hour % 12 == hour % 12:
                return iso
    if str(nlu.extract_yes_no(text)) == "yes":
        return offered[0]
    return None


_ORDER_RE = re.compile(r"\b([a-z]{1,3}) ?(\d{4,10})\b")


def _order_number(text: str, env: Env) -> str | None:
    s = normalize(text, digits=True)
    m = _ORDER_RE.search(s)
    if m and m.group(1) not in {"is", "it", "my", "the", "no", "a", "an", "of", "to", "for", "at"}:
        return (m.group(1) + m.group(2)).upper()
    m = re.search(r"\b(\d{4,10})\b", s)
    return m.group(1) if m else None


def _free_text(text: str, env: Env) -> str | None:
    text = text.strip()
    return text[:500] if text else None


def _digits_or(extractor: Callable[[str], Any]) -> Callable[[str, Env], Any]:
    def extract(text: str, env: Env):
        return extractor(env.dtmf if env.dtmf else text)

    return extract


ENTITIES: dict[str, Callable[[str, Env], Any]] = {
    "account_number": _digits_or(nlu.extract_account_number),
    "phone": lambda text, env: nlu.extract_phone(env.dtmf or text, region=settings.PHONE_DEFAULT_REGION),
    "email": lambda text, env: nlu.extract_email(text),
    "name": _name,
    "postcode": lambda text, env: (p.value if (p := nlu.extract_postcode(env.dtmf or text)) else None),
    "date_of_birth": lambda text, env: (d.isoformat() if (d := nlu.extract_date_of_birth(text)) else None),
    "yes_no": _yes_no,
    "datetime": lambda text, env: _when(nlu.extract_datetime(text, now=env.now, tz=env.tz)),
    "date": lambda text, env: (w if (w := _when(nlu.extract_datetime(text, now=env.now, tz=env.tz))) and w["has_date"] else None),
    "money": _money,
    "income": _income,
    "debt_types": _debt_types,
    "employment_status": lambda text, env: (str(v) if (v := nlu.extract_employment_status(text)) else None),
    "service": _service,
    "slot_choice": _slot_choice,
    "order_number": _order_number,
    "text": _free_text,
}
# The scenario packs' own entities (driver status, emergencies...), from their recognizers.py.
ENTITIES.update(scenario_entities())


def extract(entity: str, text: str, env: Env) -> Any:
    """The value of `entity` in `text`, or None. Extractors never raise on odd input."""
    try:
        return ENTITIES[entity](text, env)
    except (ValueError, OverflowError, ArithmeticError):
        return None
