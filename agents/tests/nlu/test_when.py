"""Dates and times relative to a fixed `now`: Wednesday 12 March 2025, 10:00 in Chicago."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.nlu.entities import extract_date_of_birth, extract_datetime, extract_eta

pytestmark = []

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2025, 3, 12, 10, 0, tzinfo=CHICAGO)


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=CHICAGO)


@pytest.mark.parametrize(("text", "expected", "has_date", "has_time"), [
    ("tomorrow at three pm", at(13, 15), True, True),
    ("next Tuesday morning", at(18, 9), True, True),
    ("Friday at 10", at(14, 10), True, True),
    ("the 14th at half past two", at(14, 14, 30), True, True),
    ("how about tomorrow afternoon", at(13, 14), True, True),
    ("this evening", at(12, 17), True, True),
    ("at 4:30 pm", at(12, 16, 30), False, True),
    ("can you do three thirty", at(12, 15, 30), False, True),
    ("can we do 3 30 pm", at(12, 15, 30), False, True),
    ("at 9", at(13, 9), False, True),  # 9:00 has passed today
    ("quarter to three", at(12, 14, 45), False, True),
    ("at ten to five on thursday", at(13, 16, 50), True, True),
    ("uh maybe thursday at two", at(13, 14), True, True),
    ("the 2nd of April at ten in the morning", at(2, 10, month=4), True, True),
    ("on the twenty first at eleven am", at(21, 11), True, True),
    ("at noon tomorrow", at(13, 12), True, True),
    ("May 5th", at(5, 9, month=5), True, False),
    ("monday", at(17, 9), True, False),
    ("in two days", at(14, 9), True, False),
    ("next week", at(19, 9), True, False),
    ("Wednesday", at(19, 9), True, False),  # said on a Wednesday: next week's
])
def test_datetime(text, expected, has_date, has_time):
    when = extract_datetime(text, now=NOW)
    assert when is not None
    assert (when.at, when.has_date, when.has_time) == (expected, has_date, has_time)
    assert when.at.tzinfo is not None


@pytest.mark.parametrize("text", ["I want to book an appointment", "yes please", "my account is 10042", ""])
def test_datetime_absent(text):
    assert extract_datetime(text, now=NOW) is None


def test_datetime_uses_the_given_timezone():
    now_utc = datetime(2025, 3, 12, 16, 0, tzinfo=UTC)  # 10:00 in Chicago
    when = extract_datetime("tomorrow at 3 pm", now=now_utc, tz="America/Chicago")
    assert when.at == at(13, 15)
    assert when.at.utcoffset() == timedelta(hours=-5)


def test_datetime_naive_now_needs_a_timezone():
    with pytest.raises(ValueError):
        extract_datetime("tomorrow", now=datetime(2025, 3, 12, 10))
    assert extract_datetime("tomorrow", now=datetime(2025, 3, 12, 10), tz=CHICAGO).at == at(13, 9)


def test_datetime_across_dst_change():
    # Clocks go forward on Sunday 9 March 2025 in Chicago.
    now = datetime(2025, 3, 8, 12, 0, tzinfo=CHICAGO)
    when = extract_datetime("tomorrow at 3 pm", now=now)
    assert when.at.hour == 15 and when.at.utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize(("text", "expected"), [
    ("in about two hours", NOW + timedelta(hours=2)),
    ("around 45 minutes", NOW + timedelta(minutes=45)),
    ("an hour and a half", NOW + timedelta(minutes=90)),
    ("two and a half hours out", NOW + timedelta(minutes=150)),
    ("should be there in like twenty minutes", NOW + timedelta(minutes=20)),
    ("half an hour", NOW + timedelta(minutes=30)),
    ("a couple of hours", NOW + timedelta(hours=2)),
    ("ETA 4:30 pm", at(12, 16, 30)),
    ("eta is one fifteen", at(12, 13, 15)),
    ("by five", at(12, 17)),
    ("I'll be there at 2", at(12, 14)),
    ("tomorrow morning", at(13, 9)),
])
def test_eta(text, expected):
    assert extract_eta(text, now=NOW) == expected


def test_eta_bare_hour_is_the_next_one():
    early = datetime(2025, 3, 12, 3, 0, tzinfo=CHICAGO)
    assert extract_eta("by five", now=early) == at(12, 5)


@pytest.mark.parametrize("text", ["I've been waiting two hours", "I got here 20 minutes ago", "not sure", ""])
def test_eta_absent(text):
    assert extract_eta(text, now=NOW) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("fifth of May nineteen eighty", date(1980, 5, 5)),
    ("05/05/1980", date(1980, 5, 5)),
    ("May 5th 1980", date(1980, 5, 5)),
    ("may five nineteen eighty", date(1980, 5, 5)),
    ("1980-05-05", date(1980, 5, 5)),
    ("born on the 3rd of march 1975", date(1975, 3, 3)),
    ("july fourth two thousand and one", date(2001, 7, 4)),
    ("31/12/1999", date(1999, 12, 31)),  # first number over 12: day first
    ("5/5/80", date(1980, 5, 5)),
    ("December the 1st, 1969", date(1969, 12, 1)),
])
def test_date_of_birth(text, expected):
    assert extract_date_of_birth(text, today=date(2025, 3, 12)) == expected


def test_date_of_birth_day_first():
    assert extract_date_of_birth("04/05/1980", day_first=True, today=date(2025, 3, 12)) == date(1980, 5, 4)
    assert extract_date_of_birth("04/05/1980", today=date(2025, 3, 12)) == date(1980, 4, 5)


@pytest.mark.parametrize("text", ["not sure", "May 5th", "02/30/1980", "the fifth of May twenty thirty", "tomorrow"])
def test_date_of_birth_absent_or_invalid(text):
    assert extract_date_of_birth(text, today=date(2025, 3, 12)) is None
