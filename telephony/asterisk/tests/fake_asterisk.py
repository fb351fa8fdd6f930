"""A fake Asterisk for the AudioSocket tests and the latency benchmark.

`FakeAsterisk` connects the way Asterisk's AudioSocket() does: the call's UUID first, then one
20 ms slin frame every 20 ms in real time (0x10 at 8 kHz or 0x12 at 16 kHz): silence, or the
caller speech queued with `say()`; DTMF (0x03) and a hangup (0x00) on request. It checks what
the server sends as strictly as Asterisk: anything but audio of a slin type with a non-zero
length, or a hangup, is an error, and so is a wait of 2 s for the next frame (Asterisk ends
the call then). Errors are collected in `errors`; `check()` fails the test on any.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass

import numpy as np

from calls.session.simulate import last_speech_sample
from calls.speech.audio import iter_frames

FRAME_S = 0.020
SILENCE_GAP_S = 2.0  # Asterisk's AudioSocket() gives up after this long without a frame
AUDIBLE = 500  # peak |sample| of a frame with sound in it


@dataclass
class Received:
    at: float  # time.monotonic() when it was read
    kind: int
    payload: bytes

    @property
    def peak(self) -> int:
        return int(np.abs(np.frombuffer(self.payload, dtype="<i2").astype(np.int32)).max())

    @property
    def audible(self) -> bool:
        return self.peak >= AUDIBLE


@dataclass
class _Utterance:
    frames: list[bytes]
    last: int  # index of the frame holding the last speech sample
    done: asyncio.Future
    position: int = 0
    last_at: float | None = None


class FakeAsterisk:
    def __init__(self, port: int, call_uuid: uuid.UUID | None, *, rate: int = 8000, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.call_uuid = call_uuid
        self.rate = rate
        self.kind = 0x10 if rate == 8000 else 0x12
        self.frame_bytes = rate * 2 // 50
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.hangup_at: float | None = None  # the server's hangup frame
        self.closed_at: float | None = None  # the server closed the socket (after a hangup frame or not)
        self.max_gap_s = 0.0
        self.spoke_at: list[float] = []  # when each utterance's first frame was sent
        self._queue: deque[_Utterance] = deque()
        self._control: deque[bytes] = deque()
        self._sending = True
        self._tasks: list[asyncio.Task] = []
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    # --- Driving the call ----------------------------------------------------------------------

    async def connect(self, *, first: bytes | None = None, send_audio: bool = True) -> None:
        """Open the socket and send the UUID (or `first` instead: a broken Asterisk), then a frame
        every 20 ms unless `send_audio` is False."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as res_audiosocket.c sets it
        if first is not None:
            self.writer.write(first)
        elif self.call_uuid is not None:
            self.writer.write(struct.pack(">BH", 0x01, 16) + self.call_uuid.bytes)
        self._sending = send_audio
        self._tasks = [asyncio.create_task(self._receive())]
        if send_audio:
            self._tasks.append(asyncio.create_task(self._send()))

    def say(self, pcm: bytes) -> asyncio.Future:
        """Queue caller speech (PCM16 at this line's rate). Resolves to the time the frame holding
        its last speech sample was written."""
        frames = list(iter_frames(pcm, self.rate))
        last = min(len(frames) - 1, last_speech_sample(pcm, self.rate) * 2 // self.frame_bytes)
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Utterance(frames, last, done))
        return done

    def press(self, digits: str) -> None:
        for digit in digits:
            self._control.append(struct.pack(">BH", 0x03, 1) + digit.encode())

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def hang_up(self) -> None:
        """Asterisk's side hangs up: a hangup frame, then the socket closes."""
        self._sending = False
        if not self.writer.is_closing():
            self.writer.write(struct.pack(">BH", 0x00, 0))
            await self.writer.drain()
            self.writer.close()

    async def until_closed(self, timeout: float = 30.0) -> None:
        """Wait until the server has closed the line."""
        await asyncio.wait_for(asyncio.shield(self._tasks[0]), timeout)

    async def until_audible(self, *, after: float = 0.0, timeout: float = 20.0) -> float:
        """When the first frame with sound came, after `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.received:
                if frame.at > after and frame.audible:
                    return frame.at
            if self.closed_at is not None:
                raise AssertionError("the line closed before any sound came")
            await asyncio.sleep(0.01)
        raise TimeoutError("no sound from the server")

    async def until_quiet(self, *, after: float, quiet_s: float = 0.6, timeout: float = 30.0) -> float:
        """When the server's audio went silent (for `quiet_s` at least) after sound that came after `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sound = [f.at for f in self.received if f.at > after and f.audible]
            if sound and self.received[-1].at - sound[-1] >= quiet_s:
                return sound[-1]
            if self.closed_at is not None and sound:
                return sound[-1]
            await asyncio.sleep(0.02)
        raise TimeoutError("the server did not go quiet")

    async def close(self) -> None:
        self._sending = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()

    def check(self) -> None:
        assert not self.errors, self.errors

    # --- What came back ------------------------------------------------------------------------

    def audio(self, *, start: float = 0.0, end: float = float("inf")) -> bytes:
        return b"".join(f.payload for f in self.received if start <= f.at < end)

    def kinds(self) -> set[int]:
        return {f.kind for f in self.received}

    # --- The two directions --------------------------------------------------------------------

    async def _send(self) -> None:
        next_at = time.monotonic()
        silence = bytes(self.frame_bytes)
        while self._sending and not self.writer.is_closing():
            while self._control:
                self.writer.write(self._control.popleft())
            utterance = self._queue[0] if self._queue else None
            if utterance is not None:
                if utterance.position == 0:
                    self.spoke_at.append(time.monotonic())
                payload = utterance.frames[utterance.position]
            else:
                payload = silence
            self.writer.write(struct.pack(">BH", self.kind, len(payload)) + payload)
            if utterance is not None:
                if utterance.position == utterance.last:
                    utterance.last_at = time.monotonic()
                utterance.position += 1
                if utterance.position == len(utterance.frames):
                    self._queue.popleft()
                    if not utterance.done.done():
                        utterance.done.set_result(utterance.last_at)
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _receive(self) -> None:
        last = time.monotonic()
        try:
            while True:
                try:
                    header = await asyncio.wait_for(self.reader.readexactly(3), SILENCE_GAP_S)
                except TimeoutError:
                    self.errors.append(f"no frame for {SILENCE_GAP_S} s (after {len(self.received)} frames)")
                    return
                except asyncio.IncompleteReadError as error:
                    if error.partial:
                        self.errors.append(f"a truncated header {error.partial!r}")
                    return
                now = time.monotonic()
                self.max_gap_s = max(self.max_gap_s, now - last)
                last = now
                kind, length = struct.unpack(">BH", header)
                if kind == 0x00:
                    if length:
                        self.errors.append(f"a hangup frame with {length} payload bytes")
                    self.hangup_at = now
                    return
                if kind not in (0x10, 0x12) or length == 0 or length % 2:
                    self.errors.append(f"a frame of type 0x{kind:02x} with {length} bytes")
                    return
                try:
                    payload = await asyncio.wait_for(self.reader.readexactly(length), SILENCE_GAP_S)
                except (TimeoutError, asyncio.IncompleteReadError):
                    self.errors.append("a truncated audio frame")
                    return
                self.received.append(Received(now, kind, payload))
        except (ConnectionError, OSError):
            pass  # reset by the server: a hangup too
        finally:
            self.closed_at = time.monotonic()
            self._sending = False
