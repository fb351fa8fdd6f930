"""Driver check-ins: location, status, delay reasons, emergencies and injuries."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.scenarios.dispatch.recognizers import (
    ENTITIES,
    DelayReason,
    DriverStatus,
    EmergencyType,
    InjuryStatus,
    extract_delay_reason,
    extract_driver_status,
    extract_emergency,
    extract_injury_status,
    extract_location,
)
from agents.slots import Env

pytestmark = []

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm on I-80 near Des Moines", "I-80 near Des Moines"),
    ("I'm on I-80, near Des Moines.", "I-80 near Des Moines"),
    ("at the Walmart DC in Bentonville", "Walmart DC in Bentonville"),
    ("mile marker one twelve on I 40", "mile marker 112 on I-40"),
    ("yeah I'm just past exit 42 on interstate 95 northbound", "past exit 42 on I-95 northbound"),
    ("we're parked at the rest area outside Joplin", "rest area outside Joplin"),
    ("I'm at the shipper in Fresno, waiting to load", "Shipper in Fresno"),
    ("I'm in traffic on I-35", "I-35"),
    ("currently on highway 61 about 20 miles south of Memphis and I should be there by five",
     "highway 61 about 20 miles south of Memphis"),
])
def test_location(text, expected):
    assert extract_location(text) == expected


@pytest.mark.parametrize("text", ["I'm on schedule", "I'm running late", "on my way", "in about two hours",
                                  "no idea", "I'm fine", "I'm on the phone", ""])
def test_location_absent(text):
    assert extract_location(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm on schedule", DriverStatus.ON_SCHEDULE),
    ("making good time, should be early", DriverStatus.ON_SCHEDULE),
    ("I'm not late", DriverStatus.ON_SCHEDULE),
    ("no delays, all good", DriverStatus.ON_SCHEDULE),
    ("running about an hour late", DriverStatus.DELAYED),
    ("I'm behind schedule", DriverStatus.DELAYED),
    ("just arrived at the receiver", DriverStatus.ARRIVED),
    ("I'm here", DriverStatus.ARRIVED),
    ("I'm loading now", DriverStatus.LOADING),
    ("they're loading me now", DriverStatus.LOADING),
    ("unloading at the dock", DriverStatus.UNLOADING),
    ("arrived and they're unloading me", DriverStatus.UNLOADING),
    ("my truck broke down", DriverStatus.BROKEN_DOWN),
    ("truck won't start", DriverStatus.BROKEN_DOWN),
    ("broke down so I'll be late", DriverStatus.BROKEN_DOWN),
])
def test_driver_status(text, expected):
    assert extract_driver_status(text) == expected


@pytest.mark.parametrize("text", ["hello", "what's my balance", ""])
def test_driver_status_absent(text):
    assert extract_driver_status(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("traffic is terrible", DelayReason.TRAFFIC),
    ("it's bumper to bumper through Dallas", DelayReason.TRAFFIC),
    ("heavy snow on the pass", DelayReason.WEATHER),
    ("I blew a tire", DelayReason.BREAKDOWN),
    ("waiting at the shipper for three hours", DelayReason.WAITING_AT_SHIPPER),
    ("they haven't loaded me yet", DelayReason.WAITING_AT_SHIPPER),
    ("there's an accident ahead", DelayReason.ACCIDENT),
    ("road's closed, detour", DelayReason.ROAD_CLOSURE),
    ("I'm out of hours, need my ten hour break", DelayReason.HOURS_OF_SERVICE),
    ("no traffic at all but it's snowing", DelayReason.WEATHER),  # negated traffic does not count
])
def test_delay_reason(text, expected):
    assert extract_delay_reason(text) == expected


@pytest.mark.parametrize("text", ["all good", "no traffic", "I'm on schedule", ""])
def test_delay_reason_absent(text):
    assert extract_delay_reason(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("I had an accident", EmergencyType.COLLISION),
    ("the truck rolled over", EmergencyType.COLLISION),
    ("I crashed but nobody's hurt", EmergencyType.COLLISION),
    ("there's smoke coming from the engine", EmergencyType.FIRE),
    ("I hit a car and now there's a fire", EmergencyType.FIRE),
    ("I blew a tire", EmergencyType.MECHANICAL),
    ("no fire no smoke just a flat tire", EmergencyType.MECHANICAL),
    ("my partner is having a heart attack", EmergencyType.MEDICAL),
    ("I'm injured and bleeding", EmergencyType.MEDICAL),
    ("someone tried to hijack my truck", EmergencyType.SECURITY),
    ("emergency", EmergencyType.OTHER),
])
def test_emergency(text, expected):
    emergency = extract_emergency(text)
    assert emergency is not None and emergency.type == expected
    assert emergency.keywords


@pytest.mark.parametrize("text", ["everything is fine", "no accident, just traffic", "nobody is hurt", ""])
def test_emergency_absent(text):
    assert extract_emergency(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("nobody's hurt", InjuryStatus.NONE),
    ("no injuries", InjuryStatus.NONE),
    ("no one is injured", InjuryStatus.NONE),
    ("I'm not hurt", InjuryStatus.NONE),
    ("we're all okay", InjuryStatus.NONE),
    ("just a few scratches", InjuryStatus.MINOR),
    ("it's not serious just a bruise", InjuryStatus.MINOR),
    ("I'm bleeding badly", InjuryStatus.SERIOUS),
    ("he's unconscious", InjuryStatus.SERIOUS),
    ("the other guy has a broken arm", InjuryStatus.SERIOUS),
    ("I hit my head", InjuryStatus.SERIOUS),
    ("I'm hurt", InjuryStatus.SERIOUS),  # no word on how bad: err on the side of help
    ("I don't know if the other driver is hurt", InjuryStatus.UNKNOWN),
    ("not sure, I can't see the other car", InjuryStatus.UNKNOWN),
])
def test_injury_status(text, expected):
    assert extract_injury_status(text) == expected


@pytest.mark.parametrize("text", ["traffic is bad", "the truck broke down", ""])
def test_injury_status_absent(text):
    assert extract_injury_status(text) is None


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(
    "i am on at near i-80 mile marker 12 not no late traffic fire hurt nobody is unloading done eta in two hours".split()),
    max_size=14).map(" ".join)))
def test_nothing_raises(text):
    """Whatever speech recognition writes, the pack's recognizers answer and never raise."""
    env = Env(now=NOW)
    for recognize in ENTITIES.values():
        recognize(text, env)
