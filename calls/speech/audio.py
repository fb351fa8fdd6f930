"""Audio plumbing shared by every transport and engine.

The internal format is PCM16: signed 16-bit little-endian, mono. Transports decode
to it (μ-law 8 kHz from Twilio, PCM 8 kHz from Asterisk) and engines consume it at
16 kHz. Functions raise `AudioError` on input the caller must hear about; the
streaming classes (`Framer`, `Resampler`) never raise on bad chunks: they drop them
and count, because one malformed network frame must not end a call.
"""

from __future__ import annotations

import io
import os
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soxr

SAMPLE_WIDTH = 2  # bytes per PCM16 sample
ENGINE_RATE = 16000  # what VAD and STT consume
FRAME_MS = 20
# Rates we meet: telephony 8 kHz, engines 16 kHz, Piper 22.05 kHz, browsers 24/44.1/48 kHz,
# plus the common WAV-upload rates.
SUPPORTED_RATES = frozenset({8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000})


class AudioError(ValueError):
    """Audio the function cannot interpret: odd length, unsupported rate, not a WAV."""


def check_rate(rate: int) -> int:
    if not isinstance(rate, int) or isinstance(rate, bool) or rate not in SUPPORTED_RATES:
        raise AudioError(f"unsupported sample rate {rate!r}; expected one of {sorted(SUPPORTED_RATES)}")
    return rate


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioError(f"expected audio bytes, got {type(data).__name__}")
    return bytes(data)


def pcm16_to_array(pcm: bytes) -> np.ndarray:
    """PCM16 bytes -> int16 array (a copy, so callers may mutate it)."""
    pcm = _as_bytes(pcm)
    if len(pcm) % SAMPLE_WIDTH:
        raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def pcm16_to_float32(pcm: bytes) -> np.ndarray:
    """PCM16 bytes -> float32 in [-1, 1), the format Whisper and Silero expect."""
    return pcm16_to_array(pcm).astype(np.float32) / 32768.0


def float32_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> PCM16 bytes; out-of-range and NaN samples are clipped/zeroed."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    # Round rather than truncate so pcm -> float -> pcm is lossless.
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


# --- G.711 μ-law -------------------------------------------------------------------------
# Semantics of the Sun reference g711.c (what CPython's audioop, sox and most PBXes use):
# the 16-bit sample is reduced to 14 bits (arithmetic shift), coded sign + magnitude with
# bias 33 and clipped at 8159. Tables make both directions a single numpy gather.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_ulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    lin = np.arange(-32768, 32768, dtype=np.int32)
    pcm = lin >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 33
    seg = np.searchsorted(_SEG_UEND, magnitude, side="left")
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0x0F))
    encode = np.empty(65536, dtype=np.uint8)
    encode[lin.astype(np.uint16)] = (uval ^ mask).astype(np.uint8)  # indexed by the int16 bit pattern

    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    decode = np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _build_ulaw_tables()


def ulaw_encode(pcm: bytes) -> bytes:
    """PCM16 -> G.711 μ-law, one byte per sample."""
    return _ULAW_ENCODE[pcm16_to_array(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 μ-law -> PCM16. Every byte is a valid code, so this never fails on bytes."""
    return _ULAW_DECODE[np.frombuffer(_as_bytes(data), dtype=np.uint8)].astype("<i2").tobytes()


# --- Resampling ----------------------------------------------------------------------------

def resample(pcm: bytes, src_rate: int, dst_rate: int, *, quality: str = "HQ") -> bytes:
    """One-shot PCM16 resampling of a complete clip (a prompt, a recording)."""
    check_rate(src_rate)
    check_rate(dst_rate)
    samples = pcm16_to_array(pcm)
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype("<i2").tobytes()
    return soxr.resample(samples, src_rate, dst_rate, quality=quality).astype("<i2").tobytes()


class Resampler:
    """Streaming PCM16 resampler: chunk boundaries leave no clicks or gaps.

    A dangling odd byte is kept for the next chunk (a TCP read may split a sample);
    non-bytes input is dropped and counted in `dropped_bytes`/`dropped_chunks`.
    `flush()` drains the filter's delay line at the end of the stream.
    """

    def __init__(self, src_rate: int, dst_rate: int, *, quality: str = "HQ") -> None:
        self.src_rate = check_rate(src_rate)
        self.dst_rate = check_rate(dst_rate)
        self._stream = (
            None if src_rate == dst_rate else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality=quality)
        )
        self._carry = b""
        self.dropped_bytes = 0
        self.dropped_chunks = 0

    def process(self, chunk: bytes) -> bytes:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            self.dropped_chunks += 1
            return b""
        data = self._carry + bytes(chunk)
        cut = len(data) - len(data) % SAMPLE_WIDTH
        data, self._carry = data[:cut], data[cut:]
        if self._stream is None or not data:
            return data
        samples = np.frombuffer(data, dtype="<i2")
        return self._stream.resample_chunk(samples).astype("<i2").tobytes()

    def flush(self) -> bytes:
        if self._carry:
            self.dropped_bytes += len(self._carry)
            self._carry = b""
        if self._stream is None:
            return b""
        out = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True).astype("<i2").tobytes()
        self._stream.clear()
        return out


# --- Framing ----------------------------------------------------------------------------------

def frame_bytes(rate: int, frame_ms: int = FRAME_MS, sample_width: int = SAMPLE_WIDTH) -> int:
    return rate * frame_ms // 1000 * sample_width


class Framer:
    """Turns arbitrary byte chunks into exact `frame_ms` frames, keeping the remainder.

    Odd-length chunks are fine: bytes are concatenated before cutting, so a sample split
    across two reads is reassembled. `flush()` ends the stream: the partial frame left over
    is dropped and counted in `dropped_bytes` (or zero-padded to a frame with `pad=True`).
    Non-bytes input is dropped and counted in `dropped_chunks`. `sample_width=1` frames
    μ-law (160 bytes per 20 ms at 8 kHz).
    """

    def __init__(self, rate: int = ENGINE_RATE, *, frame_ms: int = FRAME_MS, sample_width: int = SAMPLE_WIDTH) -> None:
        check_rate(rate)
        if frame_ms not in (10, 20, 30) or sample_width not in (1, 2):
            raise AudioError(f"unsupported framing: {frame_ms} ms, {sample_width}-byte samples")
        self.rate = rate
        self.frame_ms = frame_ms
        self.frame_size = frame_bytes(rate, frame_ms, sample_width)
        self._buffer = bytearray()
        self.dropped_bytes = 0
        self.dropped_chunks = 0

    def push(self, chunk: bytes) -> list[bytes]:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            self.dropped_chunks += 1
            return []
        self._buffer += chunk
        n = len(self._buffer) // self.frame_size * self.frame_size
        if not n:
            return []
        block = bytes(self._buffer[:n])
        del self._buffer[:n]
        return [block[i : i + self.frame_size] for i in range(0, n, self.frame_size)]

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self, *, pad: bool = False) -> list[bytes]:
        rest = bytes(self._buffer)
        self._buffer.clear()
        if not rest:
            return []
        if pad:
            return [rest + b"\x00" * (self.frame_size - len(rest))]
        self.dropped_bytes += len(rest)
        return []


def iter_frames(pcm: bytes, rate: int = ENGINE_RATE, frame_ms: int = FRAME_MS) -> Iterator[bytes]:
    """Frames of a complete clip; the trailing partial frame is zero-padded."""
    framer = Framer(rate, frame_ms=frame_ms)
    yield from framer.push(pcm)
    yield from framer.flush(pad=True)


# --- WAV -----------------------------------------------------------------------------------------

def _to_mono_int16(raw: bytes, sample_width: int, channels: int) -> np.ndarray:
    if sample_width == 1:  # WAV 8-bit is unsigned
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif sample_width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif sample_width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 16  # sign-extend, keep top 16 bits
    elif sample_width == 4:
        x = np.frombuffer(raw, dtype="<i4") >> 16
    else:
        raise AudioError(f"unsupported WAV sample width {sample_width}")
    usable = x.size - x.size % channels
    x = x[:usable].reshape(-1, channels)
    # Average channels: a stereo call recording becomes one mixed track.
    return np.clip(x.mean(axis=1).round(), -32768, 32767).astype(np.int16)


def read_wav_info(source: str | os.PathLike[str] | BinaryIO | bytes) -> tuple[bytes, int]:
    """Decode any PCM WAV to (mono PCM16 bytes, native sample rate)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with wave.open(source if not isinstance(source, os.PathLike) else os.fspath(source), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a readable PCM WAV file: {exc}") from exc
    if channels < 1:
        raise AudioError("WAV file has no channels")
    return _to_mono_int16(raw, width, channels).astype("<i2").tobytes(), rate


def read_wav(source: str | os.PathLike[str] | BinaryIO | bytes, *, rate: int = ENGINE_RATE) -> bytes:
    """Decode any PCM WAV (any rate, width, channel count) to mono PCM16 at `rate`."""
    pcm, native = read_wav_info(source)
    return resample(pcm, check_rate(native), rate)


def wav_bytes(pcm: bytes, rate: int, *, channels: int = 1) -> bytes:
    pcm = _as_bytes(pcm)
    if len(pcm) % (SAMPLE_WIDTH * channels):
        raise AudioError(f"{len(pcm)} bytes is not a whole number of {channels}-channel PCM16 frames")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(check_rate(rate))
        wav.writeframes(pcm)
    return buf.getvalue()


def write_wav(path: str | os.PathLike[str], pcm: bytes, rate: int, *, channels: int = 1) -> Path:
    """Write PCM16 to a WAV file atomically (temp file + rename): readers never see half a file."""
    data = wav_bytes(pcm, rate, channels=channels)
    path = Path(path)
    atomic_write(path, data)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp files are private; the cache is shared across workers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def interleave_stereo(left: bytes, right: bytes) -> bytes:
    """Two mono PCM16 tracks -> one interleaved stereo track (caller left, agent right).

    The shorter track is padded with silence so both sides stay aligned to the end.
    """
    a, b = pcm16_to_array(left), pcm16_to_array(right)
    n = max(a.size, b.size)
    out = np.zeros((n, 2), dtype="<i2")
    out[: a.size, 0] = a
    out[: b.size, 1] = b
    return out.tobytes()


def duration_s(pcm: bytes, rate: int) -> float:
    return len(pcm) / (SAMPLE_WIDTH * rate)


def rms_dbfs(pcm: bytes) -> float:
    """Level in dBFS (-inf for digital silence); used for logging and tests."""
    x = pcm16_to_float32(pcm)
    if x.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
