"""Dates and times as callers say them: appointments, ETAs and dates of birth.

Times and parts of day are read by our own rules (dateparser reads "friday at 10" as October
and "2:30" as 2:30 am); the calendar date comes from our rules for the common forms
("tomorrow", "next Tuesday", "the 14th") and from dateparser for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import dateparser

from agents.nlu.normalize import normalize, ordinals_to_digits, words_to_digits

__all__ = ["When", "extract_datetime", "extract_eta", "extract_date_of_birth", "PART_OF_DAY"]

PART_OF_DAY = {"morning": time(9), "afternoon": time(14), "evening": time(17), "tonight": time(19),
               "night": time(19), "noon": time(12), "midday": time(12), "lunchtime": time(12),
               "lunch": time(12), "midnight": time(0)}

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))

_HOUR_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_MINUTE_WORDS = (
    r"(?:oh|o) (?:one|two|three|four|five|six|seven|eight|nine)|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|(?:twenty|thirty|forty|fifty)(?: (?:one|two|three|four|five|six|seven|eight|nine))?"
)
_TIME_CONTEXT_BEFORE = r"(?:at|by|around|about|until|till|before|after|from|eta|say|for|maybe|like|is|then|do)"
_TIME_CONTEXT_AFTER = r"(?= ?(?:am|pm|oclock|o clock|in the (?:morning|afternoon|evening)|at night|tonight))"
_WORD_TIME_RE = re.compile(
    rf"(?:(?P<pre>\b{_TIME_CONTEXT_BEFORE} )(?P<h1>{_HOUR_WORDS}|\d{{1,2}}) (?P<m1>{_MINUTE_WORDS}|\d{{2}})\b)"
    rf"|(?:\b(?P<h2>{_HOUR_WORDS}|\d{{1,2}}) (?P<m2>{_MINUTE_WORDS}|\d{{2}})\b{_TIME_CONTEXT_AFTER})"
)
_PACKED_TIME_RE = re.compile(r"\b(\d{1,2})[.]?(\d{2}) ?(am|pm)\b")
_RELATIVE_MIN_RE = re.compile(
    rf"\b(?P<m>half|quarter|five|ten|twenty|twenty five|\d{{1,2}})(?: minutes)? (?P<rel>past|after|to|till|before) "
    rf"(?P<h>{_HOUR_WORDS}|\d{{1,2}})\b"
)
# Tried in order: "4:30 pm" must win over the "at 4" that precedes it.
_CLOCK_RES = [
    re.compile(r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))? ?(?P<ap>am|pm)\b"),
    re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b"),
    re.compile(r"\b(?P<h>\d{1,2}) ?(?:oclock|o clock)\b"),
    re.compile(
        rf"\b{_TIME_CONTEXT_BEFORE} (?P<h>\d{{1,2}})\b(?! ?(?:st|nd|rd|th|minutes?|mins?|hours?|hrs?|days?|weeks?"
        rf"|dollars?|miles?|percent|of|{_MONTH_RE})\b)(?![:/.]\d)"
    ),
]
_NAMED_TIME_RE = re.compile(r"\b(noon|midday|midnight|lunchtime|lunch time)\b")
_PART_RE = re.compile(
    r"\b(?:(?:this|tomorrow|in the|early|late|mid|first thing in the) )?(morning|afternoon|evening|tonight|night)\b"
)

_HOUR_VALUES = {w: i for i, w in enumerate(_HOUR_WORDS.split("|"), start=1)}
_MINUTE_VALUES = {"half": 30, "quarter": 15, "five": 5, "ten": 10, "twenty": 20, "twenty five": 25}


@dataclass(frozen=True)
class When:
    """A moment the caller named. `at` is aware; a missing date or time was filled in
    (today/the next occurrence, 9:00), which `has_date`/`has_time` tell apart."""

    at: datetime
    has_date: bool
    has_time: bool


def _zone(now: datetime, tz: str | tzinfo | None) -> tzinfo:
    if isinstance(tz, str):
        return ZoneInfo(tz)
    if tz is not None:
        return tz
    if now.tzinfo is None:
        raise ValueError("Give an aware `now` or a `tz`.")
    return now.tzinfo


def _words_minutes(words: str) -> int:
    return int(words_to_digits(words.replace("oh ", "").replace("o ", "")))


def _prepare(text: str) -> str:
    """Normalized text with spoken clock times written as "H:MM" and other numbers as digits."""
    s = normalize(text)
    s = re.sub(r"\bto morrow\b", "tomorrow", s)
    s = re.sub(r"\bo clock\b", "oclock", s)
    s = _PACKED_TIME_RE.sub(r"\1:\2 \3", s)

    def word_time(m: re.Match[str]) -> str:
        h, mins = (m.group("h1"), m.group("m1")) if m.group("h1") else (m.group("h2"), m.group("m2"))
        hour = int(h) if h.isdigit() else _HOUR_VALUES[h]
        minute = int(mins) if mins.isdigit() else _words_minutes(mins)
        if not (1 <= hour <= 12 and 0 <= minute < 60):
            return m.group(0)
        return f"{m.group('pre') or ''}{hour}:{minute:02d}"

    s = _WORD_TIME_RE.sub(word_time, s)

    def relative(m: re.Match[str]) -> str:
        mins = _MINUTE_VALUES.get(m.group("m")) if not m.group("m").isdigit() else int(m.group("m"))
        hour = int(m.group("h")) if m.group("h").isdigit() else _HOUR_VALUES[m.group("h")]
        if mins is None or not (1 <= hour <= 12) or mins >= 60:
            return m.group(0)
        if m.group("rel") in ("past", "after"):
            return f"{hour}:{mins:02d}"
        # "ten to five": only with a clear time context, since "from ten to five" is a range.
        before = s[max(0, m.start() - 8): m.start()]
        if not re.search(r"\b(?:at|by|around|about|until|before)\s$", before) and m.group("m") not in ("quarter",):
            return m.group(0)
        hour = 12 if hour == 1 else hour - 1
        return f"{hour}:{60 - mins:02d}"

    s = _RELATIVE_MIN_RE.sub(relative, s)
    s = ordinals_to_digits(s)
    return words_to_digits(s)


BareHour = Literal["business", "next"]


def _read_time(s: str) -> tuple[int, int, bool] | None:
    """(hour, minute, meridiem_known) of the first clock time in prepared text."""
    named = _NAMED_TIME_RE.search(s)
    m = next((m for m in (r.search(s) for r in _CLOCK_RES) if m), None)
    if m is None:
        if named:
            t = PART_OF_DAY[named.group(1).replace(" ", "")]
            return t.hour, t.minute, True
        return None
    groups = m.groupdict()
    hour, minute, ap = int(groups["h"]), int(groups.get("m") or 0), groups.get("ap")
    if hour > 23 or minute > 59:
        return None
    if ap:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ap == "pm" else 0)
        return hour, minute, True
    part = _PART_RE.search(s)
    if hour <= 12 and part:
        name = part.group(1)
        if name in ("afternoon", "evening", "tonight", "night") and hour < 12:
            hour += 12
        return hour, minute, True
    return hour, minute, hour == 0 or hour > 12


def _resolve_hour(hour: int, minute: int, known: bool, *, policy: BareHour, now_local: datetime) -> int:
    if known:
        return hour
    if policy == "business":
        # An appointment "at 3" is 15:00; "at 9" is 9:00 (opening hours run about 7 to 7).
        return hour + 12 if 1 <= hour <= 6 else hour
    # An ETA "by five" is the next five o'clock to come.
    candidate = now_local.replace(hour=hour % 12, minute=minute, second=0, microsecond=0)
    while candidate <= now_local:
        candidate += timedelta(hours=12)
    return candidate.hour


def _read_date(s: str, today: date) -> tuple[date | None, bool]:
    """(date, explicit_today) from prepared text; explicit_today when "today"/"this ..." was said."""
    if re.search(r"\bday after tomorrow\b", s):
        return today + timedelta(days=2), False
    if re.search(r"\btomorrow\b", s):
        return today + timedelta(days=1), False
    if re.search(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", s):
        return today, True
    if re.search(r"\byesterday\b", s):
        return today - timedelta(days=1), False
    m = re.search(r"\bin (\d+|a|an) (day|days|week|weeks)\b", s)
    if m:
        n = 1 if m.group(1) in ("a", "an") else int(m.group(1))
        return today + timedelta(days=n * (7 if m.group(2).startswith("week") else 1)), False
    m = re.search(r"\b(?:(next|this|coming|on) )?(" + "|".join(WEEKDAYS) + r")s?\b", s)
    if m:
        ahead = (WEEKDAYS[m.group(2)] - today.weekday()) % 7
        if ahead == 0 and m.group(1) != "this":
            ahead = 7
        if m.group(1) == "next" and re.search(r"\bweek\b", s):
            ahead += 7 if ahead < 7 else 0
        return today + timedelta(days=ahead), ahead == 0
    m = (re.search(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?: of)? (?P<mo>{_MONTH_RE})\b", s)
         or re.search(rf"\b(?P<mo>{_MONTH_RE}) (?:the )?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b", s))
    if m:
        return _next_month_day(today, MONTHS[m.group("mo")], int(m.group("d"))), False
    m = re.search(r"\b(?:the )?(\d{1,2})(?:st|nd|rd|th)\b", s)
    if m:
        return _next_day_of_month(today, int(m.group(1))), False
    if re.search(r"\bnext week\b", s):
        return today + timedelta(days=7), False
    if re.search(rf"\b(?:{_MONTH_RE})\b|\d/\d", s):
        parsed = dateparser.parse(
            s, languages=["en"],
            settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": datetime.combine(today, time(12))},
        )
        if parsed:
            return parsed.date(), False
    return None, False


def _next_month_day(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _next_day_of_month(today: date, day: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
        except ValueError:
            pass
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _local(now: datetime, tz: str | tzinfo | None) -> tuple[datetime, tzinfo]:
    zone = _zone(now, tz)
    local = now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)
    return local, zone


def extract_datetime(text: str, *, now: datetime, tz: str | tzinfo | None = None,
                     bare_hour: BareHour = "business") -> When | None:
    """The date and/or time in `text`, in the future relative to `now`, in zone `tz` (or now's zone).

    "tomorrow at three pm", "next Tuesday morning" (09:00), "Friday at 10", "the 14th at half past
    two" (14:30). A bare hour is read as business hours ("at 3" is 15:00) unless
    `bare_hour="next"` (the next such hour after now). Parts of day: morning 9:00, afternoon 14:00,
    evening 17:00, tonight 19:00.
    """
    local_now, zone = _local(now, tz)
    s = _prepare(text)
    clock = _read_time(s)
    part = _PART_RE.search(s)
    day, explicit_today = _read_date(s, local_now.date())
    if clock is None and part is None and day is None:
        return None
    if clock is not None:
        hour, minute, known = clock
        hour = _resolve_hour(hour, minute, known, policy=bare_hour, now_local=local_now)
        at_time, has_time = time(hour, minute), True
    elif part is not None:
        at_time, has_time = PART_OF_DAY[part.group(1)], True
    else:
        at_time, has_time = time(9), False
    has_date = day is not None
    if day is None:
        day = local_now.date()
        if datetime.combine(day, at_time, tzinfo=zone) <= local_now and not explicit_today:
            day += timedelta(days=1)
    return When(at=datetime.combine(day, at_time, tzinfo=zone), has_date=has_date, has_time=has_time)


# --- ETAs ----------------------------------------------------------------------------

_DURATION_PHRASES = [
    (r"\b(?:an|one) hour and (?:a )?half\b", "90 minutes"),
    (r"\b(\d+) and (?:a )?half hours?\b", r"\1.5 hours"),
    (r"\b(?:a )?half (?:an )?hour\b", "30 minutes"),
    (r"\b(?:a )?couple(?: of)? (hours|minutes)\b", r"2 \1"),
    (r"\b(?:a )?few (hours)\b", r"3 \1"),
    (r"\b(?:a )?few (minutes)\b", r"5 \1"),
    (r"\b(?:an|a) (hour|minute)\b", r"1 \1"),
]
_DURATION_PHRASES_RE = [(re.compile(p), r) for p, r in _DURATION_PHRASES]
_DURATION_RE = re.compile(
    r"\b(?P<n>\d+(?:\.\d+)?) ?(?P<u>hours?|hrs?|h|minutes?|mins?)\b(?: and (?P<n2>\d+) ?(?:minutes?|mins?))?"
)
_NOT_AN_ETA = re.compile(r"\b(?:been|waiting|waited|ago|for the (?:last|past)|already|late by|behind by|break)\b")


def extract_eta(text: str, *, now: datetime, tz: str | tzinfo | None = None) -> datetime | None:
    """When the caller expects to arrive, as an aware datetime: "in about two hours" (now + 2h),
    "around 45 minutes", "ETA 4:30 pm", "by five" (the next 5 o'clock), "tomorrow morning"."""
    local_now, _ = _local(now, tz)
    s = _prepare(text)
    for pattern, repl in _DURATION_PHRASES_RE:
        s = pattern.sub(repl, s)
    for m in _DURATION_RE.finditer(s):
        if _NOT_AN_ETA.search(s[max(0, m.start() - 25): m.start()]) or s[m.end():].startswith(" ago"):
            continue
        amount = float(m.group("n"))
        minutes = amount * 60 if m.group("u").startswith("h") else amount
        minutes += float(m.group("n2") or 0)
        if 0 < minutes <= 7 * 24 * 60:
            return local_now + timedelta(minutes=minutes)
    when = extract_datetime(text, now=now, tz=tz, bare_hour="next")
    return when.at if when and when.has_time else None


# --- dates of birth ------------------------------------------------------------------

_YEAR_WORDS = re.compile(
    r"\b(nineteen|twenty) (hundred|(?:oh|o) (?:one|two|three|four|five|six|seven|eight|nine)"
    r"|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
    r"|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?: (?:one|two|three|four|five|six|seven|eight|nine))?)\b"
)


def _spoken_years(s: str) -> str:
    """ "nineteen eighty" -> "1980" before day numbers can run into it ("may five nineteen eighty")."""

    def repl(m: re.Match[str]) -> str:
        century = 1900 if m.group(1) == "nineteen" else 2000
        tail = m.group(2)
        if tail == "hundred":
            return str(century)
        return str(century + _words_minutes(tail))

    s = _YEAR_WORDS.sub(repl, s)
    return re.sub(r"\btwo thousand(?: and)?(?: (\w+(?: \w+)?))?\b",
                  lambda m: words_to_digits(m.group(0)), s)


def extract_date_of_birth(text: str, *, day_first: bool = False, today: date | None = None) -> date | None:
    """A date of birth: "fifth of May nineteen eighty", "05/05/1980", "May 5th 1980", "1980-05-05".

    Numeric dates are month first unless `day_first` (or the first number is over 12).
    The date must be in the past; two-digit years are read as the latest past year.
    """
    today = today or date.today()
    s = normalize(text)
    s = ordinals_to_digits(s)
    s = _spoken_years(s)
    s = " ".join(words_to_digits(w) for w in s.split())  # day numbers one by one: "may five 1980"
    s = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", s)
    s = s.replace(",", " ")
    s = re.sub(r"\s+", " ", s)
    found: tuple[int, int, int] | None = None
    m = re.search(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", s)
    if m:
        found = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if not found:
        m = re.search(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})\b", s)
        if m:
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            month, day = (b, a) if (day_first or a > 12) else (a, b)
            found = (y, month, day)
    if not found:
        m = (re.search(rf"\b(?P<d>\d{{1,2}}) (?:of )?(?P<mo>{_MONTH_RE}) (?P<y>\d{{4}}|\d{{2}})\b", s)
             or re.search(rf"\b(?P<mo>{_MONTH_RE}) (?:the )?(?P<d>\d{{1,2}}) (?:of )?(?P<y>\d{{4}}|\d{{2}})\b", s))
        if m:
            found = (int(m.group("y")), MONTHS[m.group("mo")], int(m.group("d")))
    if not found:
        return None
    year, month, day = found
    if year < 100:
        year += 2000 if 2000 + year <= today.year else 1900
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    if born >= today or year < today.year - 125:
        return None
    return born
