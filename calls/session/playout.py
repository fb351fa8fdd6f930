"""Outbound audio: a bounded queue of 20 ms frames sent at real-time pace.

The session puts frames (and marks, callbacks run when playback reaches them) into the
queue; `run()` hands one frame to the transport every 20 ms. The queue holds at most
`max_frames` frames, so a producer that gets ahead, or a client that reads slowly, waits
instead of growing memory. `clear()` (barge-in) drops everything queued and bumps an
epoch that stale items and a sender mid-sleep both check, so no further frame of the
interrupted reply goes out: audio stops within one frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from calls.speech.audio import FRAME_MS, frame_bytes

logger = logging.getLogger(__name__)

FRAME_S = FRAME_MS / 1000
UNDERRUN_GAP_S = 0.060  # silence this long inside one reply is audible


@dataclass
class _Item:
    epoch: int
    frame: bytes | None = None
    on_sent: Callable[[int, float], None] | None = None  # (samples, monotonic time)
    unit: object = None  # frames of one reply: gaps between them count as underruns
    mark: Callable[[], None] | None = None


class Playout:
    def __init__(self, send: Callable, *, rate: int, max_frames: int = 50, clock=time.monotonic) -> None:
        self._send = send
        self.rate = rate
        self.frame_size = frame_bytes(rate)
        self.clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max_frames)
        self._epoch = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.underruns = 0
        self.max_gap_s = 0.0
        self.last_sent_at: float | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def put(self, frame: bytes, *, on_sent=None, unit=None, epoch: int | None = None) -> bool:
        """Queue one frame (waits while the queue is full). False if a clear() made it stale."""
        epoch = self._epoch if epoch is None else epoch
        if epoch != self._epoch:
            return False
        await self._queue.put(_Item(epoch, frame=frame, on_sent=on_sent, unit=unit))
        return epoch == self._epoch

    async def mark(self, callback: Callable[[], None], *, epoch: int | None = None) -> bool:
        """Run `callback` once every frame queued before it has been sent."""
        epoch = self._epoch if epoch is None else epoch
        if epoch != self._epoch:
            return False
        await self._queue.put(_Item(epoch, mark=callback))
        return epoch == self._epoch

    async def drained(self, *, epoch: int | None = None) -> bool:
        """Wait until everything queued so far has been played. False if cleared meanwhile."""
        done = asyncio.get_running_loop().create_future()
        if not await self.mark(lambda: done.done() or done.set_result(True), epoch=epoch):
            return False
        while not done.done():
            if (epoch if epoch is not None else self._epoch) != self._epoch:
                return False
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout=0.1)
            except TimeoutError:
                continue
        return True

    def clear(self) -> int:
        """Drop all queued audio now; returns the number of frames dropped."""
        self._epoch += 1
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            dropped += item.frame is not None
        self.frames_dropped += dropped
        return dropped

    async def run(self) -> None:
        """The pacing loop; runs until cancelled. Deadlines are absolute, so sleep jitter
        never accumulates; after an idle spell (or a late frame) the cadence restarts."""
        next_at: float | None = None
        last_unit: object = None
        while True:
            item = await self._queue.get()
            if item.epoch != self._epoch:
                continue
            if item.mark is not None:
                self._callback(item.mark)
                continue
            now = self.clock()
            if next_at is None or now > next_at + FRAME_S:
                next_at = now
            elif next_at > now:
                await asyncio.sleep(next_at - now)
                if item.epoch != self._epoch:  # cleared while we slept
                    continue
            sent_at = self.clock()
            if self.last_sent_at is not None and item.unit is not None and item.unit is last_unit:
                gap = sent_at - self.last_sent_at - FRAME_S  # silence between the two frames
                self.max_gap_s = max(self.max_gap_s, gap)
                if gap > UNDERRUN_GAP_S:
                    self.underruns += 1
            await self._send(item.frame)
            self.frames_sent += 1
            self.last_sent_at = sent_at
            last_unit = item.unit
            next_at += FRAME_S
            if item.on_sent is not None:
                self._callback(item.on_sent, len(item.frame) // 2, sent_at)

    @staticmethod
    def _callback(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # bookkeeping must never stop the audio
            logger.exception("playout callback failed")
