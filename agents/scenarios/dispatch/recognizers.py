"""Driver check-in recognizers: where the driver is, how the load is going, and emergencies.

`ENTITIES` (at the end) adds this pack's entities to the dialog engine's (agents/slots.py) and
to the post-call extractor: driver_status, location, eta, delay_reason, unloading_status,
emergency, injury_status, safety_status.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils import timezone

from agents.nlu.answers import extract_yes_no
from agents.nlu.normalize import normalize
from agents.nlu.when import extract_eta

__all__ = [
    "DriverStatus", "DelayReason", "EmergencyType", "Emergency", "InjuryStatus",
    "extract_location", "extract_driver_status", "extract_delay_reason", "extract_emergency",
    "extract_injury_status", "is_negated", "ENTITIES",
]

_NEGATORS = {"no", "not", "never", "nobody", "none", "without", "neither", "nor", "noone", "nothing", "zero"}


def is_negated(s: str, start: int, *, window: int = 3) -> bool:
    """Whether one of the `window` words before position `start` negates what follows
    ("not delayed", "no one is hurt", "nobody got injured")."""
    before = s[:start].split()[-window:]
    return any(w in _NEGATORS for w in before)


def _first_match(s: str, table: list[tuple[re.Pattern[str], object]], *, negatable: bool = True) -> object | None:
    """The label whose pattern occurs earliest in `s` and is not negated."""
    best: tuple[int, object] | None = None
    for pattern, label in table:
        for m in pattern.finditer(s):
            if negatable and is_negated(s, m.start()):
                continue
            if best is None or m.start() < best[0]:
                best = (m.start(), label)
            break
    return best[1] if best else None


# --- location ------------------------------------------------------------------------

_ROAD = (
    r"(?:i-\d+|i \d+|interstate \d+|highway \d+|hwy \d+|route \d+|us \d+|us-\d+|state route \d+|sr \d+|"
    r"mile marker \d+|mile \d+|mm \d+|exit \d+|the (?:turnpike|freeway|interstate|highway))"
)
_LOCATION_START = re.compile(
    r"\b(?:i am|we are|currently|right now|just|still|located|sitting|parked|stuck|stopped|pulled over)"
    r"(?: (?:currently|right now|just|still|sitting|parked|stuck|stopped|located|pulled over))*"
    r" (?P<loc>(?:on|at|in|near|outside|by|past|around|just past|just outside|coming up on|approaching|"
    r"heading into|leaving) .+)"
    rf"|(?P<road>{_ROAD}.*)"
    r"|^(?P<lead>(?:at|on|in|near|outside|just past|past|just outside) .+)"
)
# "I'm on schedule", "I'm in traffic": a preposition, but not a place.
_NOT_A_PLACE = re.compile(
    r"^(?:on|in|at|by|around) (?:schedule|time|track|my way|the way|(?:my |a )?break|hold|the phone|duty|lunch|"
    r"traffic|a hurry|trouble|pain|luck|good shape|bad shape|it|that|this|the road|a call|the line|the clock)\b"
    r"|^(?:in|at) (?:about |around |like |roughly |maybe )?\d+ (?:minutes?|hours?|mins?|hrs?)\b"
)
_ROAD_RE = re.compile(_ROAD)
_LOCATION_END = re.compile(
    r"\b(?:and (?:i|we|my|the|it)|but|so|because|should|will|eta|running|about to|be there|i will|i am|"
    r"i should|the truck|my truck|right now|at the moment|currently|as we speak|gonna|going to be|waiting|"
    r"loading|unloading|headed|heading to|getting|need|needs|had|have|has|got)\b.*$"
)
_PLAIN_WORDS = {"on", "at", "in", "near", "outside", "by", "past", "around", "just", "the", "of", "and", "to",
                "a", "an", "coming", "up", "approaching", "heading", "into", "leaving", "mile", "marker", "exit",
                "highway", "route", "interstate", "north", "south", "east", "west", "northbound", "southbound",
                "eastbound", "westbound", "bound", "truck", "stop", "rest", "area", "parking", "lot", "dock",
                "yard", "warehouse", "street", "road", "avenue", "county", "city", "town", "side", "shoulder",
                "from", "about", "miles", "mm", "for"}


def _road_case(s: str) -> str:
    s = re.sub(r"\b(?:i|interstate|eye)[ -](\d+)\b", r"I-\1", s)
    s = re.sub(r"\bus[ -](\d+)\b", r"US-\1", s)
    s = re.sub(r"\b(hwy|sr|mm)\b", lambda m: m.group(1).upper(), s)
    return s


def _title(word: str) -> str:
    if word in _PLAIN_WORDS or any(c.isdigit() for c in word) or word.startswith("I-") or word.isupper():
        return word
    if len(word) <= 3 and not re.search(r"[aeiou]", word):
        return word.upper()  # "dc", "ttx"
    return word.capitalize()


def extract_location(text: str) -> str | None:
    """Where the driver says they are, cleaned: "I'm on I-80 near Des Moines" -> "I-80 near Des
    Moines"; "mile marker one twelve on I 40" -> "mile marker 112 on I-40"."""
    # Clauses end a location ("at the shipper in Fresno, waiting to load"), unless the next one
    # goes on describing the place ("on I-80, near Des Moines").
    clauses = re.split(r"[,;!?]|\.(?!\d)", text)
    for i in range(1, len(clauses)):
        if re.match(r"\s*(?:near|outside|just past|past|by|in|around|about \w+ miles)\b", clauses[i], re.I):
            clauses[i] = "\x00" + clauses[i]
    joined = " ".join(c.lstrip("\x00") if c.startswith("\x00") else "\n" + c for c in clauses)
    for clause in joined.split("\n"):
        found = _location_in(clause)
        if found:
            return found
    return None


def _location_in(clause: str) -> str | None:
    s = normalize(clause, digits=True)
    s = re.sub(r"\beye (?=\d)", "i ", s)
    m = _LOCATION_START.search(s)
    if not m:
        return None
    loc = m.group("loc") or m.group("road") or m.group("lead")
    if _NOT_A_PLACE.match(loc):
        road = _ROAD_RE.search(s)  # "in traffic on I-35": the road is still a place
        if not road:
            return None
        loc = s[road.start():]
    loc = _LOCATION_END.sub("", loc).strip()
    loc = re.sub(r"^(?:on|at|in|just|currently)\s+(?=\S)", "", loc)
    loc = re.sub(r"^the\s+(?=\S)", "", loc) if not re.match(r"^the (?:turnpike|freeway|interstate|highway)", loc) else loc
    loc = re.sub(r"\s+(?:i think|or so|or something|now)$", "", loc).strip()
    if not loc or loc in _PLAIN_WORDS:
        return None
    loc = _road_case(loc)
    return " ".join(_title(w) for w in loc.split())


# --- status and delays ---------------------------------------------------------------

class DriverStatus(StrEnum):
    ON_SCHEDULE = "on_schedule"
    DELAYED = "delayed"
    ARRIVED = "arrived"
    LOADING = "loading"
    UNLOADING = "unloading"
    BROKEN_DOWN = "broken_down"


# Most specific first: "arrived and unloading" is unloading; "broke down so I'm late" is broken down.
_STATUS = [
    (DriverStatus.BROKEN_DOWN, r"\b(?:broke down|broken down|break ?down|truck (?:will not|would not|does not|is not) start|"
                               r"engine (?:died|quit|failed|is dead)|truck died|disabled|blew (?:a|my) (?:tire|engine)|"
                               r"blowout|blown tire|flat tire|waiting (?:on|for) (?:a )?(?:tow|mechanic|road service))\b"),
    (DriverStatus.UNLOADING, r"\b(?:unloading|unload|being unloaded|getting unloaded|offloading|dropping (?:off )?(?:the )?load|"
                             r"empty now|just got empty|lumper)\b"),
    (DriverStatus.LOADING, r"\b(?:loading|getting loaded|being loaded|picking up|pick up the load|at the shipper|"
                           r"(?:in|at) the dock|backed into the dock|waiting to load|loaded up)\b"),
    (DriverStatus.ARRIVED, r"\b(?:arrived|i am here|we are here|just got here|made it|checked in|checking in at|"
                           r"pulled in|pulling in|at the gate|on site|at the destination|delivered)\b"),
    (DriverStatus.DELAYED, r"\b(?:delayed|delay|running (?:a (?:bit|little) )?(?:late|behind)|late|behind schedule|"
                           r"behind|held up|stuck|not going to make it|will not make it|can not make it|slowed down|"
                           r"slow going|going to be late|pushed back)\b"),
    (DriverStatus.ON_SCHEDULE, r"\b(?:on (?:schedule|time|track)|ahead of schedule|early|right on time|all good|"
                               r"going good|going well|no (?:delays|problems|issues)|rolling|on my way|en route|"
                               r"making good time)\b"),
]
_STATUS_RE = [(label, re.compile(p)) for label, p in _STATUS]


def extract_driver_status(text: str) -> DriverStatus | None:
    """The load's status in the driver's words; "not late" / "no delays" read as on schedule."""
    s = normalize(text)
    for label, pattern in _STATUS_RE:
        for m in pattern.finditer(s):
            negated = is_negated(s, m.start()) and not m.group(0).startswith("no ")
            if not negated:
                return label
            if label is DriverStatus.DELAYED:
                return DriverStatus.ON_SCHEDULE  # "not running late", "no delay"
    return None


class DelayReason(StrEnum):
    TRAFFIC = "traffic"
    WEATHER = "weather"
    BREAKDOWN = "breakdown"
    WAITING_AT_SHIPPER = "waiting_at_shipper"
    ACCIDENT = "accident"
    ROAD_CLOSURE = "road_closure"
    HOURS_OF_SERVICE = "hours_of_service"


_DELAY_REASONS = [
    (r"\b(?:traffic|congestion|jam|jammed|backed up|bumper to bumper|rush hour|construction|road ?work|gridlock|"
     r"slow moving)\b", DelayReason.TRAFFIC),
    (r"\b(?:weather|snow|snowing|ice|icy|rain|raining|storm|storms|fog|foggy|wind|windy|blizzard|hail|"
     r"tornado|flood|flooding|white ?out|black ice|chains? (?:law|required))\b", DelayReason.WEATHER),
    (r"\b(?:broke down|broken down|break ?down|mechanical|engine|flat tire|blowout|blown tire|tire|brakes?|"
     r"transmission|repair|mechanic|tow truck|shop|overheat\w*|dead battery|alternator)\b", DelayReason.BREAKDOWN),
    (r"\b(?:waiting (?:at|on|for) (?:the )?(?:shipper|dock|load|them to load|paperwork|receiver)|"
     r"shipper (?:is|was) (?:late|slow|not ready)|(?:not|has not|have not|did not) (?:loaded|load) (?:me|us|the truck)|"
     r"waiting to (?:get )?(?:loaded|load|unloaded)|detention|load (?:was|is) not ready|at the shipper|"
     r"(?:they are|they were) (?:slow|late) (?:loading|at the dock)|no (?:door|dock) available)\b",
     DelayReason.WAITING_AT_SHIPPER),
    (r"\b(?:accident|crash|wreck|collision|pile ?up|jackknifed|rollover|rolled over|overturned)\b",
     DelayReason.ACCIDENT),
    (r"\b(?:road (?:is )?closed|closure|closed road|detour|bridge (?:is )?(?:out|closed)|lane closure|"
     r"shut down|closed (?:down|off)|blocked)\b", DelayReason.ROAD_CLOSURE),
    (r"\b(?:hours of service|hos|out of hours|ran out of hours|run out of hours|my hours|on my break|"
     r"(?:10|ten|thirty|30|34) (?:hour|minute) (?:break|reset)|mandatory break|reset|logbook|log book|eld|"
     r"clock (?:ran|runs|is running) out|out of time on my clock|out of drive time|drive time)\b",
     DelayReason.HOURS_OF_SERVICE),
]
_DELAY_REASONS_RE = [(re.compile(p), label) for p, label in _DELAY_REASONS]


def extract_delay_reason(text: str) -> DelayReason | None:
    """Why the driver is late: the first reason mentioned that is not negated ("no traffic")."""
    return _first_match(normalize(text), _DELAY_REASONS_RE)  # type: ignore[return-value]


# --- emergencies ---------------------------------------------------------------------

class EmergencyType(StrEnum):
    COLLISION = "collision"
    MECHANICAL = "mechanical"
    MEDICAL = "medical"
    FIRE = "fire"
    SECURITY = "security"
    OTHER = "other"


@dataclass(frozen=True)
class Emergency:
    type: EmergencyType
    keywords: tuple[str, ...]  # the words that raised it, for the ticket and the supervisor


# The most urgent type wins when several are mentioned ("crashed and the cab is smoking" is fire).
_EMERGENCY = [
    (EmergencyType.FIRE, r"\b(?:fire|on fire|smoke|smoking|flames?|burning|caught fire|explosion|exploded)\b"),
    (EmergencyType.SECURITY, r"\b(?:hijack\w*|robbed|robbery|stolen|theft|stole|gun|armed|threaten\w*|attacked|"
                             r"break ?in|broke into|carjack\w*|someone is following me|assault\w*)\b"),
    (EmergencyType.COLLISION, r"\b(?:accident|crash|crashed|collision|collided|hit (?:a|an|the|another|someone|me)|"
                              r"rear ended|rear-ended|rollover|rolled over|roll over|jackknifed|jack knifed|wreck|"
                              r"wrecked|overturned|ran off the road|went off the road)\b"),
    (EmergencyType.MEDICAL, r"\b(?:medical|heart|chest pains?|stroke|seizure|unconscious|passed out|fainted|"
                            r"can not breathe|not breathing|diabetic|allergic|bleeding|injured|hurt|injury|"
                            r"ambulance|sick|collapsed)\b"),
    (EmergencyType.MECHANICAL, r"\b(?:blowout|blew (?:a|my) tire|blown tire|breakdown|broke down|broken down|"
                               r"brakes? (?:failed|went out|are gone|gave out)|lost (?:my )?brakes|engine (?:failure|died|"
                               r"blew)|steering (?:went|failed)|flat tire)\b"),
    (EmergencyType.OTHER, r"\b(?:emergency|help me|mayday|urgent|sos)\b"),
]
_EMERGENCY_RE = [(label, re.compile(p)) for label, p in _EMERGENCY]


def extract_emergency(text: str) -> Emergency | None:
    """An emergency in the caller's words, classified; negated mentions ("no fire", "nobody is
    hurt") do not count."""
    s = normalize(text)
    found: dict[EmergencyType, list[str]] = {}
    for label, pattern in _EMERGENCY_RE:
        for m in pattern.finditer(s):
            if not is_negated(s, m.start()):
                found.setdefault(label, []).append(m.group(0))
    if not found:
        return None
    # A medical word that is only about an injury in a crash is the crash's injury, not the type.
    for label, _ in _EMERGENCY:
        if label in found:
            keywords = tuple(k for words in found.values() for k in words)
            return Emergency(type=label, keywords=keywords)
    return None


class InjuryStatus(StrEnum):
    NONE = "none"
    MINOR = "minor"
    SERIOUS = "serious"
    UNKNOWN = "unknown"


_INJURY_UNKNOWN = re.compile(
    r"\b(?:i do not know|do not know if|not sure|can not tell|could not tell|no idea|have not checked|"
    r"can not see|unsure|do not know yet)\b"
)
_INJURY_NONE = re.compile(
    r"\b(?:nobody|no one|noone|no body|none of us|nobody is|no injuries|no injury|not (?:hurt|injured)|"
    r"(?:everybody|everyone|we|i) (?:is|are|am) (?:all )?(?:fine|ok|okay|alright|all right|good|safe)|unhurt|uninjured|"
    r"(?:did|does|do) not get hurt|without injur\w*|no one (?:got|was|is) hurt|all fine|all good|just shaken)\b"
)
_INJURY_SERIOUS = re.compile(
    r"\b(?:bleeding (?:a lot|badly|bad|heavily)|unconscious|not breathing|can not breathe|passed out|trapped|pinned|"
    r"can not move|broken (?:arm|leg|bone|neck|back|ribs?)|broke (?:my|his|her|their) \w+|seriously|badly|severely|"
    r"really bad|critical|need an ambulance|ambulance|head injury|hit (?:my|his|her) head|unresponsive|"
    r"heart attack|stroke|seizure|lots of blood|blood everywhere|dead|dying|killed)\b"
)
_INJURY_MINOR = re.compile(
    r"\b(?:minor|scratch\w*|bruise\w*|scrape\w*|small cut|little cut|cut my|a bit sore|sore|bumped|shaken up|"
    r"just a little|nothing serious|not serious|not too bad|a little hurt|stiff|whiplash)\b"
)
_INJURY_ANY = re.compile(r"\b(?:hurt|injured|injury|injuries|bleeding|blood|pain|wounded)\b")


def extract_injury_status(text: str) -> InjuryStatus | None:
    """Whether anyone is hurt. Negation reads as none ("nobody's hurt", "no injuries"); an injury
    with no word on how bad reads as serious, so dispatch errs on the side of help."""
    s = normalize(text)
    if _INJURY_UNKNOWN.search(s):
        return InjuryStatus.UNKNOWN
    if _INJURY_SERIOUS.search(s):
        m = _INJURY_SERIOUS.search(s)
        if m and not (is_negated(s, m.start()) or m.group(0) in ("seriously", "badly", "severely")
                      and re.search(r"\bnot (?:seriously|badly|severely)\b", s)):
            return InjuryStatus.SERIOUS
    if _INJURY_MINOR.search(s):
        return InjuryStatus.MINOR
    if _INJURY_NONE.search(s):
        return InjuryStatus.NONE
    for m in _INJURY_ANY.finditer(s):
        if not is_negated(s, m.start()):
            return InjuryStatus.SERIOUS
        return InjuryStatus.NONE
    return None


# --- entities for the flows and the post-call extractor ----------------------------------------

def _safety(text: str, env: Any) -> str | None:
    s = normalize(text)
    if re.search(r"\b(?:not safe|unsafe|in danger|trapped|on fire|help)\b", s):
        return "unsafe"
    if re.search(r"\b(?:safe|fine|okay|ok|alright|all right|pulled over|on the shoulder|out of the truck)\b", s):
        return "safe"
    answer = extract_yes_no(text)
    return {"yes": "safe", "no": "unsafe", "uncertain": "unknown"}.get(str(answer)) if answer else None


_UNLOADING = [
    ("not_applicable", r"\b(?:not applicable|no unloading|nothing to unload|drop and hook|drop the trailer|n/?a|does not apply|still driving|on the road)\b"),
    ("done", r"\b(?:done|finished|complete|completed|all unloaded|empty|unloaded already|already unloaded)\b"),
    ("not_started", r"\b(?:not (?:started|yet)|have not started|haven.?t started|waiting|not begun|no not yet)\b"),
    ("in_progress", r"\b(?:in progress|unloading now|they are unloading|being unloaded|started|halfway|going on|underway)\b"),
]


def _unloading(text: str, env: Any) -> str | None:
    s = normalize(text)
    for label, pattern in _UNLOADING:
        if re.search(pattern, s):
            return label
    answer = extract_yes_no(text)
    return {"yes": "done", "no": "not_started"}.get(str(answer)) if answer else None


def _emergency(text: str, env: Any) -> str | None:
    # Speech recognition splits the word: "a blow out on the I-80".
    found = extract_emergency(re.sub(r"\bblow(?:n)? out\b", "blowout", text, flags=re.I))
    return str(found.type) if found is not None else None


_DELAY_NOT_ETA = re.compile(r"\b(?:about |around |maybe )?(?:an?|one|two|three|half an|\d+|a couple of|a few) "
                            r"(?:hours?|hrs?|minutes?|mins?) (?:late|behind|delayed|of delay)\b", re.I)


def _eta(text: str, env: Any) -> str | None:
    # "an hour late" is how late the driver is, not when they arrive.
    found: dt.datetime | None = extract_eta(_DELAY_NOT_ETA.sub(" ", text), now=env.now, tz=env.tz)
    return timezone.localtime(found).isoformat() if found else None


def _label(extractor: Callable[[str], Any]) -> Callable[[str, Any], str | None]:
    def extract(text: str, env: Any) -> str | None:
        found = extractor(text)
        return str(found) if found else None

    return extract


ENTITIES: dict[str, Callable[[str, Any], Any]] = {
    "eta": _eta,
    "location": lambda text, env: extract_location(text),
    "driver_status": _label(extract_driver_status),
    "delay_reason": _label(extract_delay_reason),
    "unloading_status": _unloading,
    "emergency": _emergency,
    "injury_status": _label(extract_injury_status),
    "safety_status": _safety,
}
