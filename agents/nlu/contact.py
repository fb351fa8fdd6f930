"""Who the caller is and how to reach them: account numbers, phones, emails, names, postcodes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from agents.nlu.normalize import UNITS, normalize

__all__ = [
    "PersonName", "Postcode",
    "extract_account_number", "extract_phone", "extract_email", "extract_name", "extract_postcode",
]

# --- account numbers -----------------------------------------------------------------

_NOT_AN_ACCOUNT_AFTER = re.compile(r"^\s*(?:dollars?|bucks|cents|pounds|euros|k\b|grand|a month|a year|per|miles?|%)")
_ACCOUNT_CUE = re.compile(r"\b(?:account|acct|customer|member|reference|ref|policy|number|id|no)\b")


def extract_account_number(text: str, *, min_digits: int = 5, max_digits: int = 10) -> str | None:
    """The account number read out in `text`, as a digit string ("one zero zero four two" -> "10042").

    Numbers that are money or distances are skipped; with several candidates the one after
    "account"/"number" wins.
    """
    spoken = normalize(text, digits=True)
    best: str | None = None
    for m in re.finditer(r"(?<![\d$£€.,])\d+(?![\d.,]*\d)", spoken):
        digits = m.group(0)
        if not (min_digits <= len(digits) <= max_digits):
            continue
        if _NOT_AN_ACCOUNT_AFTER.match(spoken[m.end():]):
            continue
        if _ACCOUNT_CUE.search(spoken[max(0, m.start() - 30): m.start()]):
            return digits
        best = best or digits
    return best


# --- phone numbers -------------------------------------------------------------------

_PHONE_CANDIDATE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")


def extract_phone(text: str, *, region: str = "US") -> str | None:
    """The phone number in `text` in E.164 form ("+14155552671"), or None.

    Spoken digits are read first ("oh seven seven ..." with region "GB"); "plus" is a "+".
    Valid numbers are preferred over merely possible ones.
    """
    spoken = normalize(text, digits=True)
    spoken = re.sub(r"\bplus\s+(?=\d)", "+", spoken)
    possible: str | None = None
    for m in _PHONE_CANDIDATE.finditer(spoken):
        candidate = m.group(0)
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if possible is None and phonenumbers.is_possible_number(number):
            possible = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return possible


# --- email addresses -----------------------------------------------------------------

_EMAIL_RE = re.compile(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}")
_SPOKEN_SYMBOLS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
# "at gmail" with no "dot com" still means the obvious address.
_KNOWN_DOMAINS = {
    "gmail": "gmail.com", "googlemail": "googlemail.com", "yahoo": "yahoo.com", "hotmail": "hotmail.com",
    "outlook": "outlook.com", "aol": "aol.com", "icloud": "icloud.com", "protonmail": "protonmail.com",
    "proton": "proton.me", "live": "live.com", "msn": "msn.com", "comcast": "comcast.net",
}
_TLDS = {"com", "org", "net", "edu", "gov", "io", "co", "us", "uk", "info", "biz", "me", "ca", "de", "ai", "app"}


def _email_token(tok: str) -> str | None:
    """One spoken token of an address as text, or None if it cannot be part of one."""
    if tok in _SPOKEN_SYMBOLS:
        return _SPOKEN_SYMBOLS[tok]
    if tok in UNITS:
        return str(UNITS[tok])
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", tok):
        return tok
    return None


def extract_email(text: str) -> str | None:
    """An email address typed or spelled out: "john dot smith at gmail dot com",
    "j o h n at example dot org", "jane underscore doe one two at yahoo"."""
    lowered = text.lower()
    typed = _EMAIL_RE.search(lowered.replace(" @ ", "@"))
    if typed:
        return typed.group(0).rstrip(".")
    words = re.sub(r"[^a-z0-9@._\s-]", " ", lowered).replace("@", " at ").split()
    words = [w.strip(".") or w for w in words]
    for i, word in enumerate(words):
        if word != "at" or i == 0:
            continue
        domain = _read_domain(words[i + 1:])
        local = _read_local(words[:i])
        if domain and local:
            return f"{local}@{domain}"
    return None


def _read_domain(words: list[str]) -> str | None:
    parts: list[str] = []
    j = 0
    while j < len(words):
        piece = _email_token(words[j])
        if piece is None or (piece in "._-" and not parts):
            break
        if parts and parts[-1] not in "._-" and piece not in "._-":
            # Two words in a row: spelled letters continue a label ("e x a m p l e"), others end it.
            if not (len(piece) == 1 and len(parts[-1]) >= 1 and re.fullmatch(r"[a-z0-9]+", parts[-1])
                    and _all_single(parts)):
                break
        parts.append(piece)
        j += 1
    while parts and parts[-1] in "._-":
        parts.pop()
    domain = "".join(parts)
    if "." not in domain:
        return _KNOWN_DOMAINS.get(domain)
    if domain.rsplit(".", 1)[1] not in _TLDS and not re.fullmatch(r"[a-z]{2,24}", domain.rsplit(".", 1)[1]):
        return None
    return domain if re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}", domain) else None


def _all_single(parts: list[str]) -> bool:
    label = []
    for p in reversed(parts):
        if p in "._-":
            break
        label.append(p)
    return all(len(p) == 1 for p in label)


def _read_local(words: list[str]) -> str | None:
    """Read the local part backwards from "at": spelled letters, digits, and words joined by "dot"."""
    parts: list[str] = []
    j = len(words) - 1
    while j >= 0:
        piece = _email_token(words[j])
        if piece is None:
            break
        if parts and parts[0] not in "._-" and piece not in "._-":
            # A word may only precede a spelled letter/digit run or a symbol.
            spelled = len(piece) == 1 and len(parts[0]) == 1
            digits_after_word = parts[0].isdigit() and piece.isalpha() and len(piece) > 1
            digit_run = piece.isdigit() and parts[0].isdigit()
            if not (spelled or digits_after_word or digit_run):
                break
            if digits_after_word:
                parts.insert(0, piece)
                j -= 1
                if j < 0 or words[j] not in _SPOKEN_SYMBOLS:
                    break
                continue
        parts.insert(0, piece)
        j -= 1
    while parts and parts[0] in "._-":
        parts.pop(0)
    local = "".join(parts)
    if local in {"is", "me", "email", "address", "it"}:
        return None
    return local or None


# --- person names --------------------------------------------------------------------

@dataclass(frozen=True)
class PersonName:
    first: str | None
    last: str | None = None

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.first, self.last) if p)


# Words that follow "this is" / "I'm" and are not names ("I'm calling about", "this is about").
_NOT_NAMES = set("""
a an the and or but so about calling call ringing trying looking going having just not really very
here there from with for on in at to of my your our his her their this that it is was be been am are
sure fine good great ok okay well sorry afraid ready driving home work working still also only
interested wondering hoping unhappy happy upset frustrated concerned confused late early done busy
regarding concerning re the customer client driver owner manager calling yes no yeah hi hello hey
speaking gonna going want wanna need needing able unable new old moving moved currently now today
tomorrow again back glad pleased hoping checking following returning ringing phoning on behalf
broken down wrong right correct true bad terrible awful ridiculous urgent important what why how who
where when which all over out off up not nothing something everything anything probably maybe
stuck lost hurt injured fine safe alright
""".split())
_WORD = r"[A-Za-z][A-Za-z'\-]*"
_ONE_NAME = rf"(?P<name>{_WORD})"
_UP_TO_TWO = rf"(?P<name>{_WORD}(?: {_WORD})?)"
_UP_TO_THREE = rf"(?P<name>{_WORD}(?: {_WORD}){{0,2}})"
_NAME_PATTERNS = [
    (re.compile(rf"\bmy (?:last name|surname|family name)(?: is|'s| s) {_ONE_NAME}", re.I), "last"),
    (re.compile(rf"\b(?:my )?(?:first |full )?name(?: is|'s| s) {_UP_TO_THREE}", re.I), "name"),
    (re.compile(rf"\b(?:you're|you are|youre) (?:speaking|talking) (?:with|to) {_UP_TO_TWO}", re.I), "name"),
    (re.compile(rf"\bcall me {_ONE_NAME}", re.I), "name"),
    # Whisper capitalizes names, so after "this is"/"I'm" a lowercase word is not one ("it's broken").
    (re.compile(rf"\b(?:this|it)(?: is|'s| s) {_UP_TO_THREE}", re.I), "cap"),
    (re.compile(rf"\b(?:i am|i'm|im) {_UP_TO_TWO}", re.I), "cap"),
]
_NAME_END = re.compile(r"\b(?:speaking|here|calling|from|with|and|about|regarding|on)\b.*$", re.I)


def extract_name(text: str) -> PersonName | None:
    """The caller's own name: "my name is John Smith", "this is Maria", "it's Jane Doe speaking"."""
    cleaned = re.sub(r"[^\w\s'\-]", " ", text)
    cleaned = re.sub(r"\b(?:um+|uh+|er|erm)\b", " ", cleaned, flags=re.I)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    for pattern, role in _NAME_PATTERNS:
        for m in pattern.finditer(cleaned):
            words = _NAME_END.sub("", m.group("name")).split()
            words = _take_name_words(words, require_capital=(role == "cap" and not cleaned.islower()))
            if not words:
                continue
            if role == "last":
                return PersonName(first=None, last=words[0])
            return PersonName(first=words[0], last=" ".join(words[1:]) or None)
    return None


def _take_name_words(words: list[str], *, require_capital: bool) -> list[str]:
    taken: list[str] = []
    for word in words:
        low = word.lower()
        if low in _NOT_NAMES or low.endswith("ing") and len(low) > 5 or any(c.isdigit() for c in word):
            break
        if require_capital and not word[0].isupper():
            break
        taken.append(word if not word.islower() else word.capitalize())
    return taken


# --- postcodes -----------------------------------------------------------------------

@dataclass(frozen=True)
class Postcode:
    value: str
    country: str  # "US" or "GB"


_UK_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_NATO = {
    "alpha": "a", "alfa": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f",
    "golf": "g", "hotel": "h", "india": "i", "juliet": "j", "juliett": "j", "kilo": "k", "lima": "l",
    "mike": "m", "november": "n", "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s",
    "tango": "t", "uniform": "u", "victor": "v", "whiskey": "w", "whisky": "w", "xray": "x", "yankee": "y",
    "zulu": "z",
}
_ZIP_CUE = re.compile(r"\b(?:zip|zipcode|postcode|postal|post code)\b")


def _postcode_piece(word: str) -> str | None:
    if word in UNITS:
        return str(UNITS[word])
    if word in _NATO:
        return _NATO[word]
    if re.fullmatch(r"[a-z0-9]{1,4}", word):
        return word
    return None


def extract_postcode(text: str, *, country: str | None = None) -> Postcode | None:
    """A US ZIP ("nine oh two one oh" -> 90210, "90210-1234") or UK postcode ("s w one a two a a"
    -> "SW1A 2AA"). `country` ("US"/"GB") limits the search; None tries both."""
    spoken = normalize(text, digits=True)
    if country in (None, "GB", "UK"):
        # Spoken runs of digits are already joined, so "nine oh two one oh" cannot pass for letters.
        words = [w.strip(".,") for w in spoken.replace("-", " ").split()]
        best: str | None = None
        for i in range(len(words)):
            joined = ""
            for j in range(i, min(i + 8, len(words))):
                piece = _postcode_piece(words[j])
                if piece is None:
                    break
                joined += piece
                m = _UK_RE.match(joined.upper())
                if m and (best is None or len(joined) > len(best.replace(" ", ""))):
                    best = f"{m.group(1)} {m.group(2)}"
            if best:
                return Postcode(best, "GB")
    if country in (None, "US"):
        candidates = [m for m in re.finditer(r"(?<![\d$.,])(\d{5})(?:-?(\d{4}))?(?![\d.,]*\d)", spoken)]
        for m in candidates:
            if _ZIP_CUE.search(spoken[max(0, m.start() - 25): m.start()]) or len(candidates) == 1:
                zip_code = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
                return Postcode(zip_code, "US")
    return None
