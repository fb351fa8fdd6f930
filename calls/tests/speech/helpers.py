"""Real engines, cached per test process, and audio helpers for the speech tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from calls.speech.audio import read_wav

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")


@cache
def piper_engine():
    from calls.speech.tts import PiperEngine

    # Deterministic: Piper otherwise samples fresh noise for every synthesis.
    return PiperEngine("joe", noise_scale=0.0, noise_w_scale=0.0)


@cache
def whisper_engine():
    from calls.speech.stt import WhisperEngine

    return WhisperEngine("tiny.en", threads=2, language="en")


@cache
def say(text: str, sample_rate: int = 16000) -> bytes:
    """Piper speech for `text`, cached for the session (PCM16 mono)."""
    return piper_engine().synthesize(text, sample_rate=sample_rate).audio


def asterisk_prompt(name: str, rate: int = 16000) -> bytes:
    return read_wav(ASTERISK_SOUNDS / f"{name}.wav", rate=rate)


def silence(ms: int, rate: int = 16000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def speech_extent(pcm: bytes, rate: int = 16000, threshold_db: float = -35.0) -> tuple[int, int]:
    """(first, last) ms where the clean signal's 10 ms energy is within threshold_db of its peak."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    hop = rate // 100
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-9)
    active = np.nonzero(level > level.max() + threshold_db)[0]
    return int(active[0] * 10), int((active[-1] + 1) * 10)


def make_noise(n: int, *, kind: str = "white", seed: int = 0) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise, n samples."""
    noise = np.random.default_rng(seed).standard_normal(n)
    if kind == "pink":  # shape white noise by 1/sqrt(f) in the frequency domain
        spectrum = np.fft.rfft(noise)
        f = np.arange(spectrum.size, dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(f), n=n)
    return noise / np.sqrt(np.mean(noise**2))


def noise_pcm(ms: int, dbfs: float, *, kind: str = "white", rate: int = 16000, seed: int = 0) -> bytes:
    """Noise alone at an RMS level of `dbfs`."""
    x = make_noise(rate * ms // 1000, kind=kind, seed=seed) * 32768 * 10 ** (dbfs / 20)
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def add_noise(pcm: bytes, snr_db: float, *, kind: str = "white", seed: int = 0) -> bytes:
    """Mix noise at `snr_db` below the power of the speech (the samples above 5% of peak)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    active = x[np.abs(x) > 0.05 * np.abs(x).max()]
    noise = make_noise(x.size, kind=kind, seed=seed) * np.sqrt(np.mean(active**2) / 10 ** (snr_db / 10))
    return np.clip(np.rint(x + noise), -32768, 32767).astype("<i2").tobytes()
