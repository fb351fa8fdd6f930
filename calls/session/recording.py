"""The call recording as the caller heard it: caller on the left, agent on the right.

Each side is placed on one wall-clock timeline (seconds since the call started), so the
agent's words sit where the caller heard them and the agent track simply stops where a
barge-in cut the audio off: only frames actually handed to the transport are recorded.

Memory stays bounded whatever the call's length or the rate the client asked for: both
tracks are kept at the engine rate (the agent's frames are resampled as they arrive, not
held at up to 48 kHz until the end), and each track's PCM goes to an anonymous temporary
file in `SPOOL_BYTES` pieces. A 15-minute call with agent audio at 48 kHz held ~120 MB
before; now it holds two spool buffers.
"""

from __future__ import annotations

import tempfile
import wave
from typing import BinaryIO

import numpy as np

from calls.speech.audio import ENGINE_RATE, SAMPLE_WIDTH, Resampler, pcm16_to_array

# Frames arriving up to this late are appended back to back (network jitter); a later
# frame means the stream really stopped for a while, and the gap is kept as silence.
JITTER_S = 0.12
# PCM kept in memory per track before it is written to the track's temporary file (~8 s at 16 kHz).
SPOOL_BYTES = 256 * 1024
# Rendering reads and interleaves this many samples per side at a time.
_RENDER_SAMPLES = 64 * 1024


class Track:
    """One mono PCM16 track stored at `rate`, capped at `max_seconds`.

    Frames may arrive at another `input_rate` (the agent's voice at the rate the client plays
    it); they are resampled as a stream, so chunk boundaries leave no clicks.
    """

    def __init__(self, rate: int, *, max_seconds: float, input_rate: int | None = None) -> None:
        self.rate = rate
        self.max_bytes = int(max_seconds * rate) * SAMPLE_WIDTH
        self.truncated = False
        self._resampler = Resampler(input_rate or rate, rate)
        self._buf = bytearray()  # the newest PCM, not yet spooled
        self._file: BinaryIO | None = None  # anonymous: gone when closed, or when the process dies
        self._spooled = 0

    def write(self, frame: bytes, at_s: float) -> None:
        position = max(0, int(at_s * self.rate)) * SAMPLE_WIDTH
        if position > len(self) + int(JITTER_S * self.rate) * SAMPLE_WIDTH:
            # The stream stopped: drain the resampler's delay line, then keep the gap silent.
            self._append(self._resampler.flush())
            self._pad(min(position, self.max_bytes) - len(self))
        self._append(self._resampler.process(frame))

    def finish(self) -> None:
        """The end of the stream: the resampler's last samples."""
        self._append(self._resampler.flush())

    def _append(self, pcm: bytes) -> None:
        if not pcm:
            return
        room = self.max_bytes - len(self)
        if room <= 0:
            self.truncated = True
            return
        if len(pcm) > room:
            self.truncated = True
        self._buf += pcm[:room]
        if len(self._buf) >= SPOOL_BYTES:
            self._spool()

    def _pad(self, nbytes: int) -> None:
        while nbytes > 0:  # in pieces: a long gap must not allocate its whole length at once
            piece = min(nbytes, SPOOL_BYTES)
            self._buf += bytes(piece)
            nbytes -= piece
            if len(self._buf) >= SPOOL_BYTES:
                self._spool()

    def _spool(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="voicecrm-recording-")
        self._file.seek(0, 2)
        self._file.write(self._buf)
        self._spooled += len(self._buf)
        self._buf = bytearray()

    def __len__(self) -> int:
        return self._spooled + len(self._buf)

    @property
    def memory_bytes(self) -> int:
        """PCM held in memory now (the rest is in the temporary file)."""
        return len(self._buf)

    def read(self, offset: int, nbytes: int) -> bytes:
        """`nbytes` of PCM from byte `offset` (fewer at the end)."""
        out = b""
        if offset < self._spooled and self._file is not None:
            self._file.seek(offset)
            out = self._file.read(min(nbytes, self._spooled - offset))
        if len(out) < nbytes:
            start = max(0, offset + len(out) - self._spooled)
            out += bytes(self._buf[start:start + nbytes - len(out)])
        return out

    @property
    def pcm(self) -> bytes:
        return self.read(0, len(self))

    @property
    def seconds(self) -> float:
        return len(self) / (SAMPLE_WIDTH * self.rate)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buf = bytearray()
        self._spooled = 0


class Recorder:
    """Caller frames arrive at the engine rate, agent frames at the transport's rate; both
    tracks are stored at `caller_rate` (the engine rate), the agent's resampled on arrival."""

    def __init__(self, *, agent_rate: int, max_seconds: float, caller_rate: int = ENGINE_RATE) -> None:
        self.caller = Track(caller_rate, max_seconds=max_seconds)
        self.agent = Track(caller_rate, max_seconds=max_seconds, input_rate=agent_rate)
        self.rate = caller_rate

    @property
    def memory_bytes(self) -> int:
        return self.caller.memory_bytes + self.agent.memory_bytes

    def stereo_wav_file(self) -> BinaryIO:
        """The stereo WAV (caller left, agent right) in a temporary file, at its start, rendered
        in pieces so the whole recording is never in memory. The caller closes it."""
        self.caller.finish()
        self.agent.finish()
        out = tempfile.TemporaryFile(prefix="voicecrm-recording-")
        frames = max(len(self.caller), len(self.agent)) // SAMPLE_WIDTH
        wav = wave.open(out, "wb")  # noqa: SIM115 - closed below; closing it leaves `out` open
        wav.setnchannels(2)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(self.rate)
        wav.setnframes(frames)  # the header is final at once: no seeking back
        for start in range(0, frames, _RENDER_SAMPLES):
            n = min(_RENDER_SAMPLES, frames - start)
            block = np.zeros((n, 2), dtype="<i2")  # the shorter track ends in silence
            for channel, track in enumerate((self.caller, self.agent)):
                samples = pcm16_to_array(track.read(start * SAMPLE_WIDTH, n * SAMPLE_WIDTH))
                block[: samples.size, channel] = samples
            wav.writeframesraw(block.tobytes())
        wav.close()
        out.seek(0)
        return out

    def stereo_wav(self) -> bytes:
        with self.stereo_wav_file() as wav:
            return wav.read()

    def stereo_pcm(self) -> bytes:
        """Interleaved stereo PCM16 at the engine rate (for tests and tools)."""
        with self.stereo_wav_file() as file, wave.open(file, "rb") as wav:
            return wav.readframes(wav.getnframes())

    def close(self) -> None:
        """Release both tracks' temporary files (also done when the recorder is collected)."""
        self.caller.close()
        self.agent.close()

    @property
    def empty(self) -> bool:
        return not len(self.caller) and not len(self.agent)


def split_stereo(pcm: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) int16 arrays of interleaved stereo PCM16 (for tests and tools)."""
    x = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    return x[:, 0].copy(), x[:, 1].copy()
