"""Text normalization for speech-recognition output.

Whisper transcripts of phone calls carry fillers, missing or odd punctuation, split words
("a count" for "account") and homophones ("too", "for", "oh"). `normalize()` turns an
utterance into lowercase words the recognizers can match; `words_to_digits()` turns spoken
numbers into digit strings without touching ordinary words ("someone", "often", "to go").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize", "words_to_digits", "ordinals_to_digits", "UNITS", "TEENS", "TENS"]

# --- number vocabulary ---------------------------------------------------------------

UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"thousand": 1000, "million": 1_000_000}
ZEROS = {"zero", "oh", "o", "nought"}
REPEATS = {"double": 2, "triple": 3}
# Homophones that are only digits inside a run of spoken digits ("one zero for two").
WEAK_DIGITS = {"to": 2, "too": 2, "for": 4, "won": 1, "ate": 8, "niner": 9}

ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}

_PUNCT_EDGES = ",.;:!?\"'()[]"

# --- normalize -----------------------------------------------------------------------

_CONTRACTIONS = [
    (r"\bcan't\b|\bcant\b|\bcannot\b", "can not"),
    (r"\bwon't\b|\bwont\b", "will not"),
    (r"\bain't\b", "is not"),
    (r"\b(do|does|did|is|are|was|were|have|has|had|could|would|should|must|need)n'?t\b", r"\1 not"),
    (r"\bi'm\b|\bim\b", "i am"),
    (r"\b(what|where|that|it|he|she|there|here|who|how|when|why)'?s\b", r"\1 is"),
    (r"\blet's\b", "let us"),
    (r"\b(i|you|we|they)'ll\b", r"\1 will"),
    (r"\b(i|you|we|they|could|would|should)'ve\b", r"\1 have"),
    (r"\b(you|we|they)'re\b", r"\1 are"),
    (r"\b(i|you|we|they|he|she)'d\b", r"\1 would"),
    # "id"/"ive" without the apostrophe, only where a verb follows: "customer id" must stay.
    (r"\bid (?=like|love|want|need|prefer|rather|be)\b", "i would "),
    (r"\bive (?=got|been|had|called|tried|paid)\b", "i have "),
    (r"\bwanna\b", "want to"),
    (r"\bgonna\b", "going to"),
    (r"\bgotta\b", "got to"),
    (r"\bkinda\b", "kind of"),
    (r"\by'all\b", "you all"),
    (r"'s\b", ""),  # remaining possessives: "john's" -> "john"
]
_CONTRACTIONS_RE = [(re.compile(p), r) for p, r in _CONTRACTIONS]

# Whisper's non-speech annotations: "(music playing)", "[inaudible]", "*coughs*".
_ANNOTATION_RE = re.compile(r"\([^)\d]*\)|\[[^\]\d]*\]|\*[^*\d]*\*")
# Punctuation goes, except what entities need: "12,500", "12.5", "4:30", "05/05/1980", "I-80",
# "555-1234", "$", "@", "%". Apostrophes stay until contractions are expanded.
_PUNCT_RE = re.compile(r"[^\w\s$£€@%'.,:/-]|(?<!\d)[.,:/]|[.,:/](?!\d)|(?<!\w)-|-(?!\d)")
_AMPM_RE = re.compile(r"\b([ap])\.\s?m\b\.?")
_SPACE_RE = re.compile(r"\s+")

_FILLERS = {"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "eh", "hmm", "hm", "mm", "mmm"}
# "like" is a filler after these words ("it's like really slow") but not in "i'd like to".
_LIKE_FILLER_AFTER = {"to", "so", "is", "was", "and", "but", "just", "it", "its", "um", "uh", "yeah", "okay", "oh"}

# Common ASR confusions on a phone line, as (pattern, replacement). Contextual, so a real use
# of the word survives ("i know" stays, "know" alone is "no").
# Run before fillers are dropped: "uh huh" is an answer, not two fillers.
_BACKCHANNELS = [
    (r"\b(?:uh huh|uh-huh|mm hmm|mhm|mm-hmm|mmhmm|mm hm)\b", "yes"),
    (r"\b(?:nuh uh|uh uh|nuh-uh|uh-uh)\b", "no"),
]
_BACKCHANNELS_RE = [(re.compile(p), r) for p, r in _BACKCHANNELS]

_ASR = [
    (r"^know\b(?! (?:how|what|where|when|why|if|that|the|my|your|about)\b)", "no"),
    (r"^(?:yeah|yep|yup|ya|yah|yea)\b", "yes"),
    (r"\btoo (?=a|an|the|my|me|your|someone|somebody|him|her|them|us|you)\b", "to "),
    (r"\btwo (?=the|my|me|your|someone|somebody|him|her|them|us|you)\b", "to "),
    (r"\b(?:wear|were) (?=is|are|does|do|can)\b", "where "),
    (r"\b(my|the|this|pay|paid|a|your|on|about) build\b", r"\1 bill"),
    (r"\b(so|too|very|really) hi$", r"\1 high"),
    (r"\b(amount|payment|bill|balance|money) do\b(?! (?:you|i|we|they)\b)", r"\1 due"),
    (r"\b(i|we) oh\b(?! (?:zero|one|two|three|four|five|six|seven|eight|nine)\b)", r"\1 owe"),
    (r"\b(make|making|a) pavement\b", r"\1 payment"),
    (r"\b(book|schedule|make|get) (a|an) apartment\b", r"\1 an appointment"),
    (r"\b(my|current|account|the) bounce\b", r"\1 balance"),
    (r"\bcouncil\b", "cancel"),
    (r"\b(?:why|wi|wai|wie) ?fi\b", "wifi"),
    (r"\binner ?net\b", "internet"),
    (r"\byour ours\b", "your hours"),
    (r"\bknew (?=line|account|plan|service|customer|phone|number|address|modem|router)\b", "new "),
    (r"\bcontract and$", "contract end"),
    (r"\b(ok|okay|thanks|thank you|alright|all right|bye) by$", r"\1 bye"),
    (r"^by$|^by (?=bye)", "bye"),
    (r"\bby bye\b", "bye bye"),
]
_ASR_RE = [(re.compile(p), r) for p, r in _ASR]


def _drop_fillers(words: list[str]) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(words):
        if word in _FILLERS:
            continue
        if word == "like":
            prev = out[-1] if out else ""
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if nxt != "to" and (not prev or prev in _LIKE_FILLER_AFTER or nxt in _FILLERS):
                continue
        if word == "know" and out and out[-1] == "you" and (len(out) < 2 or out[-2] not in {"do", "would", "will", "did"}):
            out.pop()  # "you know" as a filler
            continue
        out.append(word)
    return out


def normalize(text: str, *, digits: bool = False) -> str:
    """Lowercase words with fillers, punctuation and common ASR confusions cleaned up.

    With `digits=True` spoken numbers become digit strings as well (see `words_to_digits`).
    """
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()
    text = _ANNOTATION_RE.sub(" ", text)
    text = _AMPM_RE.sub(r"\1m", text)
    text = _PUNCT_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", text).strip()
    for pattern, repl in _CONTRACTIONS_RE:
        text = pattern.sub(repl, text)
    text = text.replace("'", "")
    for pattern, repl in _BACKCHANNELS_RE:
        text = pattern.sub(repl, text)
    text = " ".join(_drop_fillers(text.split()))
    for pattern, repl in _ASR_RE:
        text = pattern.sub(repl, text)
    text = _SPACE_RE.sub(" ", text).strip()
    if digits:
        text = words_to_digits(text)
    return text


# --- words_to_digits -----------------------------------------------------------------

_HYPHEN_NUMBER_RE = re.compile(
    r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-(one|two|three|four|five|six|seven|eight|nine"
    r"|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)\b",
    re.IGNORECASE,
)


def _core(token: str) -> str:
    return token.strip(_PUNCT_EDGES).lower()


def _is_strong_digit(word: str) -> bool:
    return word in UNITS or (len(word) == 1 and word.isdigit())


def _number_kind(words: list[str], i: int, *, in_run: bool = False) -> str | None:
    """What kind of number token words[i] is in its context, or None if it is an ordinary word.
    `in_run`: the word before it was read as part of a number."""
    w = words[i]
    prev = words[i - 1] if i > 0 else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    nxt2 = words[i + 2] if i + 2 < len(words) else ""
    if w.isdigit():
        return "numeral"
    if w in UNITS:
        return "unit"
    if w in TEENS:
        return "teen"
    if w in TENS:
        return "tens"
    if w == "hundred":
        return "hundred"
    if w in SCALES:
        return "scale"
    if w in ZEROS and w != "zero":
        # "oh" is zero only next to other digits: "five oh two", "oh seven seven ..." - not "oh, two things".
        prev_num = prev in UNITS or prev in TEENS or prev in TENS or prev.isdigit() or prev in REPEATS
        if prev_num or (in_run and prev in ZEROS) or (_is_strong_digit(nxt) and (_is_strong_digit(nxt2) or nxt2 in ZEROS)):
            return "zero"
        return None
    if w in REPEATS and (_is_strong_digit(nxt) or nxt in ZEROS):
        return "repeat"
    if w == "a" and nxt in ("hundred", "thousand", "million"):
        return "a"
    if w in WEAK_DIGITS:
        if nxt in ("hundred", "thousand") and w in ("to", "too", "for"):
            return "weak"  # "pay to hundred dollars"
        prev2 = words[i - 2] if i > 1 else ""
        if _is_strong_digit(prev) and _is_strong_digit(nxt) and (_is_strong_digit(prev2) or _is_strong_digit(nxt2)):
            return "weak"
    return None


class _Group:
    """One cardinal number being read left to right ("two thousand four hundred and six")."""

    def __init__(self) -> None:
        self.total = 0
        self.current = 0
        self.last: str | None = None
        self.last_scale = 10**12
        self.text: str | None = None  # set for groups that are copied verbatim (digits, zeros)

    @classmethod
    def verbatim(cls, text: str) -> _Group:
        group = cls()
        group.text = text
        return group

    def value(self) -> str:
        return self.text if self.text is not None else str(self.total + self.current)

    def accepts(self, kind: str, value: int) -> bool:
        if self.text is not None or self.last is None:
            return False
        last, cur = self.last, self.current
        if kind == "unit" and value > 0:
            return (last == "tens" and cur % 10 == 0) or last in ("hundred", "and", "scale")
        if kind in ("teen", "tens"):
            return last in ("hundred", "and", "scale") and cur % 100 == 0
        if kind == "hundred":
            return last in ("unit", "teen", "tens", "numeral") and 0 < cur < 100
        if kind == "scale":
            return last != "scale" and (self.total + cur) > 0 and value < self.last_scale
        return False

    def add(self, kind: str, value: int) -> None:
        if kind == "hundred":
            self.current *= 100
        elif kind == "scale":
            # "two thousand": everything so far times the scale ("fifteen hundred thousand" too).
            self.total = (self.total + self.current) * value
            self.current = 0
            self.last_scale = value
        else:
            self.current += value
        self.last = kind


def _value(kind: str, word: str) -> int:
    if kind == "unit":
        return UNITS[word]
    if kind == "teen":
        return TEENS[word]
    if kind == "tens":
        return TENS[word]
    if kind == "hundred":
        return 100
    if kind == "scale":
        return SCALES[word]
    if kind == "weak":
        return WEAK_DIGITS[word]
    return 0


def words_to_digits(text: str) -> str:
    """Replace spoken numbers with digit strings.

    Adjacent numbers are read as one digit string, the way callers read out account
    numbers, years and phone numbers: "one zero zero four two" -> "10042", "nineteen
    eighty" -> "1980", "double seven" -> "77", "1 0 0 4 2" -> "10042"; cardinals are
    added up: "one hundred and fifty" -> "150", "fifteen hundred" -> "1500".
    Words are matched whole, so "someone", "often" and "to go" are never touched.
    """
    raw = _HYPHEN_NUMBER_RE.sub(r"\1 \2", text).split()
    words = [_core(t) for t in raw]
    out: list[str] = []
    i = 0
    while i < len(raw):
        kind = _number_kind(words, i)
        # A lone "one" stays a word ("no one", "this one") unless a unit follows it.
        if kind is None or kind in ("hundred", "scale") or (words[i] == "one" and _lone_one(words, i)):
            out.append(raw[i])
            i += 1
            continue
        end, digits = _read_run(words, raw, i)
        if not digits:
            out.append(raw[i])
            i += 1
            continue
        # Keep punctuation around the run: "(one two three)," -> "(123),".
        lead = raw[i][: len(raw[i]) - len(raw[i].lstrip(_PUNCT_EDGES))]
        trail = raw[end - 1][len(raw[end - 1].rstrip(_PUNCT_EDGES)):]
        out.append(lead + digits + trail)
        i = end
    return " ".join(out)


def _read_run(words: list[str], raw: list[str], start: int) -> tuple[int, str]:
    """Read the run of number words from `start`: (index after it, its digits)."""
    groups: list[_Group] = []
    group: _Group | None = None

    def close() -> None:
        nonlocal group
        if group is not None:
            groups.append(group)
            group = None

    i = start
    while i < len(words):
        # Punctuation that ends a clause ends the number; commas between digits do not.
        if i > start and raw[i - 1][-1:] in ".;:!?":
            break
        word = words[i]
        kind = _number_kind(words, i, in_run=i > start)
        if kind is None:
            follows = _number_kind(words, i + 1) if i + 1 < len(words) else None
            if word == "and" and group is not None and group.last in ("hundred", "scale") \
                    and follows in ("unit", "teen", "tens"):
                group.last = "and"  # "one hundred and fifty"
                i += 1
                continue
            if word == "point" and (group or groups):
                close()
                i = _read_decimals(words, i + 1, groups[-1])
            break
        if kind == "repeat":  # "double seven"
            close()
            digit = words[i + 1]
            groups.append(_Group.verbatim(("0" if digit in ZEROS else str(UNITS.get(digit, digit))) * REPEATS[word]))
            i += 2
            continue
        if kind == "numeral" and group is None and len(word) <= 3 and i + 1 < len(words) \
                and words[i + 1] in ("hundred", "thousand", "million"):
            group = _Group()  # "5 thousand"
            group.current, group.last = int(word), "numeral"
            i += 1
            continue
        if kind in ("zero", "numeral"):
            close()
            groups.append(_Group.verbatim("0" if kind == "zero" else word))
            i += 1
            continue
        value = 1 if kind == "a" else _value(kind, word)
        kind = "unit" if kind in ("a", "weak") else kind
        if group is not None and group.accepts(kind, value):
            group.add(kind, value)
        elif kind in ("hundred", "scale"):
            break  # a scale that fits nothing before it ("1 0 hundred") stays a word
        else:
            close()
            group = _Group()
            group.add(kind, value)
        i += 1
    close()
    return i, "".join(g.value() for g in groups)


def _read_decimals(words: list[str], start: int, group: _Group) -> int:
    """ "twelve point five": append the digits after "point" to `group`; return the next index."""
    decimals = []
    i = start
    while i < len(words) and _number_kind(words, i, in_run=True) in ("unit", "zero", "numeral"):
        word = words[i]
        decimals.append(str(UNITS[word]) if word in UNITS else "0" if word in ZEROS else word)
        i += 1
    if not decimals:
        return start - 1  # "twelve point" with nothing after: "point" stays a word
    group.text = group.value() + "." + "".join(decimals)
    return i


_UNIT_WORDS = {
    "dollar", "dollars", "buck", "bucks", "pound", "pounds", "hour", "hours", "minute", "minutes", "day", "days",
    "week", "weeks", "month", "months", "year", "years", "pm", "am", "p.m.", "a.m.", "oclock", "o'clock",
    "mile", "miles", "thousand", "hundred", "million", "percent", "point", "and", "or", "to",
}


def _lone_one(words: list[str], i: int) -> bool:
    nxt = words[i + 1] if i + 1 < len(words) else ""
    neighbours_numeric = any(
        k is not None for k in (
            _number_kind(words, i - 1) if i > 0 else None,
            _number_kind(words, i + 1) if i + 1 < len(words) else None,
        )
    )
    return not (neighbours_numeric or nxt in _UNIT_WORDS)


_ORDINAL_RE = re.compile(
    r"\b(?:(twenty|thirty)[ -])?(" + "|".join(sorted(ORDINALS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


_MONTH_BEFORE_RE = re.compile(
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]* $"
)


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def ordinals_to_digits(text: str) -> str:
    """ "twenty first" -> "21st", "fifth" -> "5th". Used for dates; "second" alone is left alone
    unless a month or "of" is near, since "wait a second" is common."""

    def repl(m: re.Match[str]) -> str:
        tens = TENS.get((m.group(1) or "").lower(), 0)
        word = m.group(2).lower()
        if word == "second" and not tens:
            # "wait a second" is common; a date reads "the second", "may second", "second of".
            before = text[max(0, m.start() - 10): m.start()].lower()
            after = text[m.end(): m.end() + 4].lower()
            if not (after.startswith(" of") or before.endswith("the ") or _MONTH_BEFORE_RE.search(before)):
                return m.group(0)
        n = tens + ORDINALS[word]
        if tens and ORDINALS[word] >= 10:
            return m.group(0)
        return f"{n}{_ordinal_suffix(n)}"

    return _ORDINAL_RE.sub(repl, text)
