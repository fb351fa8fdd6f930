"""A caller made of audio files, for `simulate_call`, the latency benchmark and tests.

`SimulatedCaller` behaves like a phone line: it feeds the session a 20 ms frame every
20 ms, in real time, silence (or line noise) when the caller says nothing. `say()` plays
one utterance and returns the moment the last sample of actual speech was handed over,
which is where voice-to-voice latency starts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from calls.speech.audio import ENGINE_RATE, FRAME_MS, frame_bytes, iter_frames

from .transport import MemoryTransport

FRAME_S = FRAME_MS / 1000


def last_speech_sample(pcm: bytes, rate: int = ENGINE_RATE, *, threshold_db: float = -40.0) -> int:
    """Index of the last sample of speech: the end of the last 5 ms window within
    `threshold_db` of the loudest one (trailing silence and breath noise don't count)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    hop = rate // 200
    n = x.size // hop
    if n == 0:
        return 0
    level = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1.0)
    active = np.nonzero(level > level.max() + threshold_db)[0]
    return int((active[-1] + 1) * hop) if active.size else 0


@dataclass
class Utterance:
    frames: list[bytes]
    done: asyncio.Future
    last_frame: int  # index of the frame holding the last speech sample
    position: int = 0  # frames fed so far
    fed_at: float | None = None  # when the last speech frame was fed


class SimulatedCaller:
    def __init__(self, session, *, noise_dbfs: float | None = None, seed: int = 0) -> None:
        self.session = session
        self.frame_size = frame_bytes(ENGINE_RATE)
        self._pending: deque[Utterance] = deque()
        self._stopped = False
        self._rng = np.random.default_rng(seed)
        self.noise_dbfs = noise_dbfs
        self.frames_fed = 0
        self.late_frames = 0  # fed more than two frames late (an overloaded event loop)

    def _silence(self) -> bytes:
        if self.noise_dbfs is None:
            return bytes(self.frame_size)
        scale = 32768 * 10 ** (self.noise_dbfs / 20)
        noise = self._rng.standard_normal(self.frame_size // 2) * scale
        return np.clip(np.rint(noise), -32768, 32767).astype("<i2").tobytes()

    @property
    def speaking(self) -> bool:
        return bool(self._pending)

    async def run(self) -> None:
        """Feed frames until `stop()`; start it as a task next to `session.run()`."""
        next_at = time.monotonic()
        while not self._stopped:
            utterance = self._pending[0] if self._pending else None
            frame = utterance.frames[utterance.position] if utterance else self._silence()
            self.session.feed_audio(frame)
            now = time.monotonic()
            self.frames_fed += 1
            if utterance is not None:
                if utterance.position == utterance.last_frame:
                    utterance.fed_at = now
                utterance.position += 1
                if utterance.position == len(utterance.frames):
                    self._pending.popleft()
                    if not utterance.done.done():
                        utterance.done.set_result(utterance.fed_at or now)
            if now - next_at > 2 * FRAME_S:
                self.late_frames += 1
            next_at += FRAME_S
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:  # hopelessly behind: restart the clock rather than burst
                next_at = time.monotonic()
        for utterance in self._pending:
            if not utterance.done.done():
                utterance.done.set_result(utterance.fed_at or time.monotonic())

    def queue(self, pcm: bytes) -> asyncio.Future:
        """Queue `pcm` (16 kHz PCM16) after anything already queued. The future resolves, once it
        has all been fed, to the monotonic time the frame with its last speech sample was fed."""
        frames = list(iter_frames(pcm, ENGINE_RATE))
        done = asyncio.get_running_loop().create_future()
        if not frames:
            done.set_result(time.monotonic())
            return done
        last = min(len(frames) - 1, last_speech_sample(pcm) * 2 // self.frame_size)
        self._pending.append(Utterance(frames, done, last))
        return done

    async def say(self, pcm: bytes) -> float:
        return await self.queue(pcm)

    def press(self, digits: str) -> None:
        for digit in digits:
            self.session.feed_dtmf(digit)

    def stop(self) -> None:
        self._stopped = True

    def hang_up(self, reason: str = "caller_hangup") -> None:
        self._stopped = True
        self.session.hang_up(reason)


async def wait_until_listening(transport: MemoryTransport, *, after: float = 0.0, timeout: float = 30.0,
                               settle: float = 0.0, run: asyncio.Task | None = None) -> bool:
    """Wait until the agent has spoken since `after` and gone back to listening: True; False if the
    call ended first (its `ended` event, or `run`, the session's task, finished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run is not None and run.done():
            return False
        spoke = False
        for at, event in transport.events:
            if at < after:
                continue
            if event.get("type") == "ended":
                return False
            if event.get("type") == "state" and event.get("state") == "speaking":
                spoke = True
            elif spoke and event.get("type") == "state" and event.get("state") == "listening":
                if settle:
                    await asyncio.sleep(settle)
                return True
        await asyncio.sleep(0.02)
    raise TimeoutError("the agent did not finish speaking")


def first_frame_after(transport: MemoryTransport, t: float) -> float | None:
    for at, _ in transport.frames:
        if at > t:
            return at
    return None
