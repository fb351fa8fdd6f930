"""Intent recognition for customer-service calls, built for noisy speech recognition.

How an utterance is scored:
1. `normalize()` cleans the transcript (fillers, contractions, known ASR confusions).
2. Words split by the recognizer are joined ("a point meant" -> "appointment") and unknown
   words are snapped to the nearest lexicon word with rapidfuzz ("servis" -> "service").
3. Each intent's weighted patterns are matched; an action said with a negation ("I don't want
   to cancel") does not count for that action and counts a little for `deny`.
4. A few rules settle overlaps (cancel + appointment is `cancel_appointment`), chit-chat
   intents give way to a real request, and a confidence under the threshold is `unknown`.

Patterns are compiled once per recognizer; recognizing is a few hundred regex searches on a
short string (well under a millisecond). Supervisors add phrases, or whole new intents, per
agent through `extra_phrases` (from AgentConfig), without code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from agents.nlu.lexicon import CONVERSATIONAL, EXAMPLES, INTENT_PATTERNS, NEGATABLE
from agents.nlu.normalize import normalize

__all__ = ["IntentResult", "IntentRecognizer", "recognize_intent", "INTENTS", "UNKNOWN"]

UNKNOWN = "unknown"
INTENTS: tuple[str, ...] = (*INTENT_PATTERNS, UNKNOWN)


@dataclass(frozen=True)
class IntentResult:
    intent: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)  # raw score per intent that matched anything


# Negation in the few words before an action: "i do not want to cancel", "not trying to cancel".
# "can not" is left out on purpose: "why can not i pay online" still asks to pay.
_NEGATOR = re.compile(r"\b(?:never|no longer)\b|(?<!can )(?<!could )\bnot\b")
_CONTRAST = re.compile(r"\b(?:but|just|instead|only|rather)\b")
# Whisper writes these on silence or noise; they are not the caller talking.
_HALLUCINATIONS = re.compile(
    r"^(?:you|thank you for watching|thanks for watching|please subscribe|subscribe|the end|bye bye bye|"
    r"thank you for listening|music|applause|silence)$"
)
# Words never snapped to a lexicon word, however close (they are common on their own).
_COMMON = set("""
about above after again against also always another anyone anything around because been before being
below between both could doing down during each every from further have having here hers herself him
himself into itself just know like maybe might more most much must myself never nothing once only other
ought ours ourselves over own same shall should some someone something still such than that their theirs
them themselves then there these they thing things think this those through today tomorrow under until
very want wanted what when where which while whom with would your yours yourself yourselves please thanks
thank really right sorry okay alright sure well yeah going come coming gonna getting trying said says
guys people woman water house plane route phones hello again morning evening night weekend month year
years weeks days hours minutes money dollars first second third last next since ever whatever
""".split())

_SMALL_WORDS = frozenset("a an the on in to of my is it and or i me we you at for by be so".split())
_CONVERSATIONAL_DAMPING = 0.5
_FALLBACK_WEIGHT = 0.9
_EXTRA_WEIGHT = 1.6  # an admin's phrase is specific: it should beat a lone built-in keyword


def _word_pattern(phrase: str) -> str:
    """An admin phrase as a regex: its words in order, `*` for up to three words in between."""
    pieces = [" ".join(re.escape(w) for w in normalize(part).split()) for part in phrase.split("*")]
    pieces = [p for p in pieces if p]
    return r"\b" + r"(?: \w+){0,3} ".join(pieces) + r"\b" if pieces else ""


class IntentRecognizer:
    """Scores an utterance against every intent. Build once, call `recognize()` per turn.

    `extra_phrases` maps an intent name (new or existing) to phrases callers say for it;
    `threshold` is the confidence under which the answer is `unknown`.
    """

    def __init__(self, extra_phrases: Mapping[str, Iterable[str]] | None = None, *, threshold: float = 0.4) -> None:
        self.threshold = threshold
        self._patterns: dict[str, list[tuple[re.Pattern[str], float, bool]]] = {}
        for intent, entries in INTENT_PATTERNS.items():
            self._patterns[intent] = [(re.compile(p), w, intent in NEGATABLE) for p, w in entries]
        examples = {intent: list(phrases) for intent, phrases in EXAMPLES.items()}
        # Admin phrases also match approximately ("warranty clam"), since nobody writes ASR
        # variants into a settings page.
        self._fuzzy_phrases: list[tuple[str, str]] = []
        for intent, phrases in (extra_phrases or {}).items():
            for phrase in phrases:
                pattern = _word_pattern(phrase)
                if not pattern:
                    continue
                self._patterns.setdefault(intent, []).append((re.compile(pattern), _EXTRA_WEIGHT, intent in NEGATABLE))
                plain = " ".join(normalize(phrase.replace("*", " ")).split())
                examples.setdefault(intent, []).append(plain)
                if "*" not in phrase and len(plain) >= 8:
                    self._fuzzy_phrases.append((intent, plain))
        self.intents: tuple[str, ...] = (*self._patterns, UNKNOWN)
        # The fuzzy fallback compares whole utterances with example phrases.
        self._example_texts = [text for phrases in examples.values() for text in phrases]
        self._example_intents = [intent for intent, phrases in examples.items() for _ in phrases]
        vocab = {w for entries in self._patterns.values() for p, _, _ in entries for w in re.findall(r"[a-z]{4,}", p.pattern)}
        vocab |= {w for text in self._example_texts for w in text.split() if len(w) >= 4}
        self._vocab = sorted(vocab)
        self._vocab_set = frozenset(vocab)
        self._corrections: dict[str, str] = {}

    # -- token repair ------------------------------------------------------------------

    def _snap(self, word: str) -> str:
        """The lexicon word an unknown word was probably meant to be, or the word itself."""
        if len(word) < 5 or word in self._vocab_set or word in _COMMON or not word.isalpha():
            return word
        cached = self._corrections.get(word)
        if cached is not None:
            return cached
        best = process.extractOne(word, self._vocab, scorer=JaroWinkler.normalized_similarity, score_cutoff=0.92)
        result = best[0] if best and best[0][0] == word[0] else word
        if len(self._corrections) < 10_000:  # bounded: callers can say anything
            self._corrections[word] = result
        return result

    def _repair(self, words: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(words):
            joined = None
            for span in (3, 2):
                chunk = words[i: i + span]
                if len(chunk) < span or all(w in self._vocab_set for w in chunk):
                    continue
                candidate = "".join(chunk)
                # Only rebuild a longer word from pieces ("a point meant"), never swallow a small
                # word into its neighbour ("there a" is not "there").
                if len(candidate) < 6 or chunk[-1] in _SMALL_WORDS:
                    continue
                if candidate in self._vocab_set:
                    joined = (candidate, span)
                    break
                best = process.extractOne(candidate, self._vocab, scorer=fuzz.ratio, score_cutoff=90)
                if best and abs(len(best[0]) - len(candidate)) <= 2 and chunk[-1] not in self._vocab_set \
                        and len(best[0]) >= max(len(w) for w in chunk) + 2:
                    joined = (best[0], span)
                    break
            if joined:
                out.append(joined[0])
                i += joined[1]
            else:
                out.append(self._snap(words[i]))
                i += 1
        return out

    # -- scoring -----------------------------------------------------------------------

    def _score(self, text: str) -> tuple[dict[str, float], int]:
        hits: dict[str, list[float]] = {}
        negated_actions = 0
        for intent, entries in self._patterns.items():
            for pattern, weight, negatable in entries:
                for m in pattern.finditer(text):
                    if negatable and self._negated(text, m.start()):
                        negated_actions += 1
                        continue
                    hits.setdefault(intent, []).append(weight)
                    break
        for intent, phrase in self._fuzzy_phrases:
            if intent not in hits:
                similarity = fuzz.partial_ratio(phrase, text, score_cutoff=88)
                if similarity:
                    hits[intent] = [_EXTRA_WEIGHT * similarity / 100]
        scores = {intent: max(ws) + 0.3 * (sum(ws) - max(ws)) for intent, ws in hits.items()}
        return scores, negated_actions

    @staticmethod
    def _negated(text: str, start: int) -> bool:
        window = " ".join(text[:start].split()[-4:])
        last = None
        for match in _NEGATOR.finditer(window):
            last = match
        return last is not None and not _CONTRAST.search(window[last.end():])

    def _settle(self, scores: dict[str, float], negated_actions: int) -> dict[str, float]:
        if negated_actions:
            scores["deny"] = scores.get("deny", 0.0) + 0.5
        # An appointment action outranks the generic one it contains.
        if scores.get("cancel_appointment"):
            for other in ("cancellation", "book_appointment"):
                if other in scores:
                    scores[other] *= 0.5
        if scores.get("reschedule_appointment") and "book_appointment" in scores:
            scores["book_appointment"] *= 0.5
        content = max((s for i, s in scores.items() if i not in CONVERSATIONAL), default=0.0)
        if content >= 1.0:
            for intent in CONVERSATIONAL:
                if intent in scores:
                    scores[intent] *= _CONVERSATIONAL_DAMPING
        return scores

    def _fallback(self, text: str, scores: dict[str, float]) -> None:
        """Whole-utterance fuzzy match against example phrases, for wordings no pattern covers."""
        if len(text.split()) < 2:
            return
        best = process.extractOne(text, self._example_texts, scorer=fuzz.ratio, score_cutoff=82)
        if best:
            intent = self._example_intents[best[2]]
            scores[intent] = max(scores.get(intent, 0.0), _FALLBACK_WEIGHT * best[1] / 100)

    def recognize(self, text: str) -> IntentResult:
        normalized = normalize(text)
        if not normalized or _HALLUCINATIONS.match(normalized):
            return IntentResult(UNKNOWN, 1.0 if not normalized else 0.9, {})
        repaired = " ".join(self._repair(normalized.split()))
        scores, negated = self._score(repaired)
        if max(scores.values(), default=0.0) < 1.0:
            self._fallback(repaired, scores)
        scores = self._settle(scores, negated)
        if not scores:
            return IntentResult(UNKNOWN, 1.0, {})
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        top_intent, top = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = (1 - math.exp(-1.5 * top)) * (0.2 + 0.8 * top / (top + second))
        rounded = {intent: round(score, 3) for intent, score in ranked}
        if confidence < self.threshold:
            return IntentResult(UNKNOWN, round(1 - confidence, 3), rounded)
        return IntentResult(top_intent, round(confidence, 3), rounded)


@lru_cache(maxsize=1)
def _default() -> IntentRecognizer:
    return IntentRecognizer()


def recognize_intent(text: str) -> IntentResult:
    """Recognize with the built-in lexicon only (no per-agent phrases)."""
    return _default().recognize(text)
