"""What the caller actually heard of an interrupted reply.

Audio is played sentence by sentence, and for each sentence we know how many samples
were handed to the transport and where its speech starts and ends inside the clip
(Piper pads sentences with silence). A partly played sentence contributes the words
whose middle had been played, with each word's share of the speaking time taken as
proportional to its length in characters: good to about a word for Piper voices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def speech_span(pcm: bytes, rate: int, *, threshold_db: float = -40.0) -> tuple[int, int]:
    """(first, last) sample of the audible part: 10 ms windows within `threshold_db` of the peak."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    hop = max(1, rate // 100)
    n = x.size // hop
    if n == 0:
        return 0, x.size
    level = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1.0)
    active = np.nonzero(level > level.max() + threshold_db)[0]
    if active.size == 0:
        return 0, x.size
    return int(active[0] * hop), int(min(x.size, (active[-1] + 1) * hop))


@dataclass
class PlayedSentence:
    text: str
    samples: int  # length of the sentence's audio
    span: tuple[int, int]  # where speech is inside it
    played: int = 0  # samples handed to the transport so far

    @property
    def finished(self) -> bool:
        return self.played >= self.span[1]


def heard_prefix(text: str, played: int, span: tuple[int, int]) -> str:
    start, end = span
    if played >= end:
        return text
    if played <= start or end <= start:
        return ""
    fraction = (played - start) / (end - start)
    words = text.split()
    weights = np.array([len(w) + 1 for w in words], dtype=np.float64)  # +1: the gap after it
    middles = (np.cumsum(weights) - weights / 2) / weights.sum()
    return " ".join(w for w, middle in zip(words, middles) if middle <= fraction)


def heard_text(sentences: list[PlayedSentence]) -> str:
    parts = [heard_prefix(s.text, s.played, s.span) for s in sentences]
    return " ".join(p for p in parts if p)
