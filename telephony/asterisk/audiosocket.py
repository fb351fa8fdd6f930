"""The Asterisk AudioSocket wire protocol: frame kinds, an incremental parser, and the only two
frames the server ever sends.

Every frame is a kind (u8), a payload length (u16, big-endian) and the payload. Asterisk sends
the call's UUID first (16 bytes), then audio, DTMF digits (Asterisk >= 20.14/21.9/22.4), an
error or a hangup; the server sends back audio and, at the end, a hangup. Asterisk tears the
call down on anything else from the server, and on zero-length audio, so `hangup_frame()` and
`audio_frame()` are all there is to build with.

Audio is signed 16-bit little-endian mono PCM. 0x10 is slin at 8 kHz; 0x11-0x18 are slin at
12/16/24/32/44.1/48/96/192 kHz (Asterisk >= 20.17/21.12/22.7/23.1, res_audiosocket's
"message types for all slin sample rates"): slin16 is 0x12. An Asterisk without them labels
every channel format 0x10, which is why the dialplan forces `c(slin)` or `c(slin16)`.

The parser checks each header before it waits for the payload, so a frame announcing more
than its kind can hold fails at once and the buffer never holds more than one frame.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

HEADER = struct.Struct(">BH")


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    SLIN = 0x10  # 8 kHz
    SLIN12 = 0x11
    SLIN16 = 0x12
    SLIN24 = 0x13
    SLIN32 = 0x14
    SLIN44 = 0x15  # 44.1 kHz
    SLIN48 = 0x16
    SLIN96 = 0x17
    SLIN192 = 0x18
    ERROR = 0xFF


AUDIO_RATES: dict[Kind, int] = {
    Kind.SLIN: 8000, Kind.SLIN12: 12000, Kind.SLIN16: 16000, Kind.SLIN24: 24000, Kind.SLIN32: 32000,
    Kind.SLIN44: 44100, Kind.SLIN48: 48000, Kind.SLIN96: 96000, Kind.SLIN192: 192000,
}
AUDIO_KINDS: dict[int, Kind] = {rate: kind for kind, rate in AUDIO_RATES.items()}

# Asterisk's own error codes are one byte of bit flags (the payload is optional).
ERROR_FLAGS = {0x01: "the calling party hung up", 0x02: "frame forwarding error", 0x04: "memory allocation error"}

# Asterisk writes each channel frame as one message: 20 ms as a rule, a few times that with long
# packetization. Nothing real comes near 200 ms; more is a broken peer.
MAX_AUDIO_MS = 200
MAX_ERROR_BYTES = 64


class ProtocolError(ValueError):
    """The peer broke the framing: a length-prefixed stream cannot be resynchronized after it."""


def max_audio_bytes(rate: int) -> int:
    return min(0xFFFF - 1, rate * MAX_AUDIO_MS // 1000 * 2)


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes = b""

    @property
    def rate(self) -> int | None:
        """The sample rate of an audio frame, None for the other kinds."""
        return AUDIO_RATES.get(self.kind)

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.payload)

    @property
    def digit(self) -> str:
        return self.payload.decode("latin-1")

    @property
    def error_code(self) -> int | None:
        return self.payload[0] if self.payload else None

    def error_text(self) -> str:
        """The error code and the flags Asterisk documents, for the log."""
        code = self.error_code
        if code is None:
            return "no code"
        flags = [text for bit, text in ERROR_FLAGS.items() if code & bit]
        return f"0x{self.payload.hex()}" + (f" ({', '.join(flags)})" if flags else "")


def check_header(kind_byte: int, length: int) -> Kind:
    """The frame's kind, or ProtocolError for an unknown kind or a length its kind cannot have."""
    try:
        kind = Kind(kind_byte)
    except ValueError:
        raise ProtocolError(f"unknown frame type 0x{kind_byte:02x}") from None
    rate = AUDIO_RATES.get(kind)
    if rate is not None:
        if length == 0:
            raise ProtocolError(f"zero-length audio frame (type 0x{kind:02x})")
        if length % 2 or length > max_audio_bytes(rate):
            raise ProtocolError(f"audio frame of {length} bytes at {rate} Hz (type 0x{kind:02x})")
    elif kind is Kind.UUID and length != 16:
        raise ProtocolError(f"UUID frame of {length} bytes, not 16")
    elif kind is Kind.DTMF and length != 1:
        raise ProtocolError(f"DTMF frame of {length} bytes, not 1")
    elif kind is Kind.HANGUP and length != 0:
        raise ProtocolError(f"hangup frame with a {length}-byte payload")
    elif kind is Kind.ERROR and length > MAX_ERROR_BYTES:
        raise ProtocolError(f"error frame of {length} bytes")
    return kind


class Parser:
    """Bytes in, frames out, in order; chunks may split a frame anywhere.

        parser = Parser()
        for frame in parser.feed(data):   # raises ProtocolError at the first bad header,
            ...                           # after yielding the good frames before it

    After a ProtocolError every later `feed` raises it again.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: ProtocolError | None = None
        self.bytes_in = 0
        self.frames_in = 0

    @property
    def pending(self) -> int:
        """Bytes held for a frame not complete yet (at most one frame's worth)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[Frame]:
        if self._error is not None:
            raise self._error
        self.bytes_in += len(data)
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            kind_byte, length = HEADER.unpack_from(self._buffer)
            try:
                kind = check_header(kind_byte, length)
            except ProtocolError as error:
                self._error = error
                self._buffer.clear()
                raise
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            self.frames_in += 1
            yield Frame(kind, payload)


HANGUP_FRAME = HEADER.pack(Kind.HANGUP, 0)


def hangup_frame() -> bytes:
    return HANGUP_FRAME


def audio_frame(pcm: bytes, rate: int) -> bytes:
    """One audio message for Asterisk. ValueError for what Asterisk would hang up on: an empty or
    odd payload, one too long, a rate without a message type."""
    kind = AUDIO_KINDS.get(rate)
    if kind is None:
        raise ValueError(f"AudioSocket has no audio type for {rate} Hz")
    if not pcm or len(pcm) % 2 or len(pcm) > max_audio_bytes(rate):
        raise ValueError(f"audio payload of {len(pcm)} bytes at {rate} Hz")
    return HEADER.pack(kind, len(pcm)) + bytes(pcm)
