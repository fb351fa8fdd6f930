"""The speech engines' interfaces and the values they return; the registry imports only these.

Engines (stt.py, tts.py, vad.py, fake.py) subclass them; the rest of the product talks to
an engine through these types and `registry.get_*()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from core.text import split_sentences

from .audio import duration_s


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What was said. `confidence` is in 0..1 (see WhisperEngine._confidence)."""

    text: str
    confidence: float = 0.0
    words: list[Word] = field(default_factory=list)
    language: str = "en"
    duration: float = 0.0  # seconds of audio
    model: str = ""
    elapsed: float = 0.0  # seconds spent transcribing, for the Turn's stage timings

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        words = [Word(**w) for w in data.get("words", [])]
        return cls(**{**data, "words": words})


class SttEngine:
    """Transcribes one utterance or recording."""

    name = "stt"
    model: str = ""

    def transcribe(
        self,
        audio: bytes,
        *,
        language: str | None = None,
        beam_size: int = 1,
        word_timestamps: bool = True,
    ) -> Transcript:
        """`audio` is PCM16 mono at 16 kHz. Raise AudioError for malformed audio, SttError if the
        engine cannot run. Silence gives an empty Transcript, not an error."""
        raise NotImplementedError

    def transcribe_live(self, audio: bytes, *, language: str | None = None) -> Transcript:
        """A live caller turn: as fast as the engine can, no word timings needed."""
        return self.transcribe(audio, language=language, beam_size=1, word_timestamps=False)


@dataclass(frozen=True)
class Speech:
    """Synthesized audio: PCM16 mono bytes at `sample_rate`.

    `fallback_reason` is set when the primary engine failed and `engine` is the fallback.
    """

    audio: bytes
    sample_rate: int
    engine: str
    text: str = ""
    fallback_reason: str | None = None

    @property
    def duration(self) -> float:
        return duration_s(self.audio, self.sample_rate)


class TtsEngine:
    """Synthesizes text. `rate` is the speaking rate (1.0 normal, 1.2 = 20% faster);
    `sample_rate` the output rate (None = the voice's native rate)."""

    name = "tts"

    def synthesize(self, text: str, *, voice: str | None = None, rate: float | None = None,
                   sample_rate: int | None = None) -> Speech:
        chunks = list(self.stream(text, voice=voice, rate=rate, sample_rate=sample_rate))
        if not chunks:
            return Speech(b"", sample_rate or self.native_rate(voice), self.name, text)
        return Speech(b"".join(c.audio for c in chunks), chunks[0].sample_rate, self.name, text)

    def stream(self, text: str, *, voice: str | None = None, rate: float | None = None,
               sample_rate: int | None = None) -> Iterator[Speech]:
        """Yield audio sentence by sentence, each as soon as it exists, so playback of the
        first sentence overlaps synthesis of the rest. Raise TtsError."""
        for sentence in split_sentences(text):
            yield self._synthesize_one(sentence, voice=voice, rate=rate, sample_rate=sample_rate)

    def _synthesize_one(self, text: str, *, voice: str | None, rate: float | None,
                        sample_rate: int | None) -> Speech:
        raise NotImplementedError

    def native_rate(self, voice: str | None = None) -> int:
        raise NotImplementedError

    def voice_id(self, voice: str | None = None) -> str:
        """A stable identity of the voice, for cache keys."""
        return voice or ""


class Vad:
    """Scores 20 ms PCM16 mono frames. Raise AudioError for a frame of the wrong size."""

    name = "vad"
    threshold = 0.5

    def speech_probability(self, frame: bytes, rate: int) -> float:
        raise NotImplementedError

    def is_speech(self, frame: bytes, rate: int) -> bool:
        return self.speech_probability(frame, rate) >= self.threshold

    def reset(self) -> None:
        """Forget per-stream state (a new call, or after the agent finished speaking)."""
