"""The call recording as the caller heard it: caller on the left, agent on the right.

Each side is placed on one wall-clock timeline (seconds since the call started), so the
agent's words sit where the caller heard them and the agent track simply stops where a
barge-in cut the audio off: only frames actually handed to the transport are recorded.
"""

from __future__ import annotations

import numpy as np

from calls.speech.audio import ENGINE_RATE, SAMPLE_WIDTH, interleave_stereo, resample, wav_bytes

# Frames arriving up to this late are appended back to back (network jitter); a later
# frame means the stream really stopped for a while, and the gap is kept as silence.
JITTER_S = 0.12


class Track:
    """One mono PCM16 track at `rate`, capped at `max_seconds` so memory stays bounded."""

    def __init__(self, rate: int, *, max_seconds: float) -> None:
        self.rate = rate
        self.max_bytes = int(max_seconds * rate) * SAMPLE_WIDTH
        self._pcm = bytearray()
        self.truncated = False

    def write(self, frame: bytes, at_s: float) -> None:
        position = max(0, int(at_s * self.rate)) * SAMPLE_WIDTH
        if position > len(self._pcm) + int(JITTER_S * self.rate) * SAMPLE_WIDTH:
            self._pcm += bytes(min(position, self.max_bytes) - len(self._pcm))
        room = self.max_bytes - len(self._pcm)
        if room <= 0:
            self.truncated = True
            return
        self._pcm += frame[:room]

    @property
    def pcm(self) -> bytes:
        return bytes(self._pcm)

    @property
    def seconds(self) -> float:
        return len(self._pcm) / (SAMPLE_WIDTH * self.rate)


class Recorder:
    """Caller frames arrive at the engine rate, agent frames at the transport's rate; the
    agent track is resampled once, when the recording is rendered."""

    def __init__(self, *, agent_rate: int, max_seconds: float, caller_rate: int = ENGINE_RATE) -> None:
        self.caller = Track(caller_rate, max_seconds=max_seconds)
        self.agent = Track(agent_rate, max_seconds=max_seconds)

    def stereo_pcm(self) -> bytes:
        """Interleaved stereo PCM16 at the caller's rate."""
        agent = resample(self.agent.pcm, self.agent.rate, self.caller.rate) if self.agent.pcm else b""
        return interleave_stereo(self.caller.pcm, agent)

    def stereo_wav(self) -> bytes:
        return wav_bytes(self.stereo_pcm(), self.caller.rate, channels=2)

    @property
    def empty(self) -> bool:
        return not self.caller.pcm and not self.agent.pcm


def split_stereo(pcm: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) int16 arrays of interleaved stereo PCM16 (for tests and tools)."""
    x = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    return x[:, 0].copy(), x[:, 1].copy()
