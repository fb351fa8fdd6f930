"""The AudioSocket wire format: parsing what Asterisk sends, refusing what it never would, and
building the only two frames the server sends."""

import struct
import uuid

import pytest

from calls.speech.audio import iter_frames
from calls.tests.speech.helpers import asterisk_prompt
from telephony.asterisk.audiosocket import (
    AUDIO_RATES,
    Frame,
    Kind,
    Parser,
    ProtocolError,
    audio_frame,
    hangup_frame,
)

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")


def frame(kind: int, payload: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack(">BH", kind, len(payload) if length is None else length) + payload


def test_a_call_as_asterisk_sends_it_split_anywhere():
    prompt = asterisk_prompt("vm-goodbye", 8000)
    audio = list(iter_frames(prompt, 8000))
    stream = (frame(0x01, CALL.bytes) + b"".join(frame(0x10, f) for f in audio) + frame(0x03, b"5")
              + frame(0xFF, b"\x01") + frame(0x00))
    for chunk_size in (1, 2, 3, 7, 320, 323, 4096):
        parser = Parser()
        frames = [f for i in range(0, len(stream), chunk_size) for f in parser.feed(stream[i:i + chunk_size])]
        assert frames[0] == Frame(Kind.UUID, CALL.bytes) and frames[0].uuid == CALL
        assert [f.kind for f in frames[1:-3]] == [Kind.SLIN] * len(audio)
        assert b"".join(f.payload for f in frames[1:-3]) == b"".join(audio)
        assert {f.rate for f in frames[1:-3]} == {8000} and frames[0].rate is None
        assert frames[-3].digit == "5"
        assert frames[-2].kind is Kind.ERROR and frames[-2].error_code == 0x01
        assert frames[-1] == Frame(Kind.HANGUP)
        assert parser.pending == 0 and parser.frames_in == len(frames) and parser.bytes_in == len(stream)


def test_every_slin_rate_has_its_type():
    assert AUDIO_RATES == {Kind(0x10): 8000, Kind(0x11): 12000, Kind(0x12): 16000, Kind(0x13): 24000,
                           Kind(0x14): 32000, Kind(0x15): 44100, Kind(0x16): 48000, Kind(0x17): 96000,
                           Kind(0x18): 192000}
    parser = Parser()
    (parsed,) = parser.feed(frame(0x12, bytes(640)))
    assert parsed.kind is Kind.SLIN16 and parsed.rate == 16000


@pytest.mark.parametrize("data, message", [
    (frame(0x02, b"\x01\x35\x00\x00\x00\x00"), "unknown frame type 0x02"),  # the Go library's DTMF, not Asterisk's
    (frame(0x20, bytes(4)), "unknown frame type 0x20"),
    (b"GET / HTTP/1.1\r\n", "unknown frame type 0x47"),
    (frame(0x10, b""), "zero-length audio"),
    (frame(0x12, b""), "zero-length audio"),
    (frame(0x10, bytes(321)), "audio frame of 321 bytes"),
    (frame(0x10, length=60000), "audio frame of 60000 bytes"),  # refused on the header alone
    (frame(0x01, bytes(15)), "UUID frame of 15 bytes"),
    (frame(0x01, bytes(17)), "UUID frame of 17 bytes"),
    (frame(0x03, b"12"), "DTMF frame of 2 bytes"),
    (frame(0x00, b"\x00"), "hangup frame with a 1-byte payload"),
    (frame(0xFF, length=1000), "error frame of 1000 bytes"),
])
def test_broken_framing_is_a_protocol_error(data, message):
    parser = Parser()
    with pytest.raises(ProtocolError, match=message):
        list(parser.feed(data))
    with pytest.raises(ProtocolError, match=message):  # and stays one: the stream cannot be resynchronized
        list(parser.feed(frame(0x00)))
    assert parser.pending == 0


def test_the_frames_before_a_bad_header_are_still_read():
    parser = Parser()
    got = []
    with pytest.raises(ProtocolError):
        for f in parser.feed(frame(0x01, CALL.bytes) + frame(0x10, bytes(320)) + b"\x99garbage"):
            got.append(f.kind)
    assert got == [Kind.UUID, Kind.SLIN]


def test_the_buffer_holds_one_frame_at_most():
    parser = Parser()
    assert list(parser.feed(frame(0x10, bytes(320))[:200])) == []
    assert parser.pending == 200
    (whole,) = parser.feed(frame(0x10, bytes(320))[200:])
    assert len(whole.payload) == 320 and parser.pending == 0


def test_error_codes_are_explained():
    assert Frame(Kind.ERROR, b"\x01").error_text() == "0x01 (the calling party hung up)"
    assert Frame(Kind.ERROR, b"\x06").error_text() == "0x06 (frame forwarding error, memory allocation error)"
    assert Frame(Kind.ERROR).error_text() == "no code" and Frame(Kind.ERROR).error_code is None


def test_the_server_builds_only_hangup_and_audio():
    assert hangup_frame() == b"\x00\x00\x00"
    pcm = asterisk_prompt("vm-goodbye", 8000)[:320]
    assert audio_frame(pcm, 8000) == b"\x10\x01\x40" + pcm
    assert audio_frame(bytes(640), 16000)[:3] == b"\x12\x02\x80"
    parser = Parser()
    assert list(parser.feed(audio_frame(pcm, 8000) + hangup_frame())) == [Frame(Kind.SLIN, pcm), Frame(Kind.HANGUP)]
    for bad in (b"", bytes(3)):  # Asterisk hangs up on zero-length audio; odd bytes are not PCM16
        with pytest.raises(ValueError):
            audio_frame(bad, 8000)
    with pytest.raises(ValueError, match="no audio type for 11025 Hz"):
        audio_frame(bytes(440), 11025)
    with pytest.raises(ValueError):
        audio_frame(bytes(8000), 8000)  # 500 ms in one message
