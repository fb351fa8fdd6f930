import io
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calls.speech import audio
from calls.speech.audio import AudioError, Framer, Resampler

RATES = [8000, 16000, 22050, 24000, 48000]
pcm_bytes = st.lists(st.integers(-32768, 32767), max_size=2000).map(lambda xs: np.array(xs, dtype="<i2").tobytes())


def reference_lin2ulaw(sample: int) -> int:
    """Sun g711.c linear2ulaw, scalar, as published (the tables are checked against it)."""
    seg_uend = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
    pcm = sample >> 2
    mask = 0xFF
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    pcm = min(pcm, 8159) + 33
    seg = next((i for i, end in enumerate(seg_uend) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def test_ulaw_encode_matches_reference_for_every_16_bit_sample():
    samples = np.arange(-32768, 32768, dtype="<i2")
    expected = bytes(reference_lin2ulaw(int(s)) for s in samples)
    assert audio.ulaw_encode(samples.tobytes()) == expected


def test_ulaw_known_values():
    assert audio.ulaw_encode(np.array([0, 32767, -32768], dtype="<i2").tobytes()) == b"\xff\x80\x00"
    decoded = np.frombuffer(audio.ulaw_decode(b"\x00\x80\xff\x7f"), dtype="<i2").tolist()
    assert decoded == [-32124, 32124, 0, 0]


@given(st.binary(max_size=1000))
@settings(deadline=None)  # timing varies on shared CI machines
def test_ulaw_decode_encode_is_identity_except_negative_zero(codes):
    again = audio.ulaw_encode(audio.ulaw_decode(codes))
    assert again == codes.replace(b"\x7f", b"\xff")


@given(pcm_bytes)
@settings(deadline=None)  # timing varies on shared CI machines
def test_ulaw_encode_is_idempotent_and_error_bounded(pcm):
    once = audio.ulaw_decode(audio.ulaw_encode(pcm))
    assert audio.ulaw_decode(audio.ulaw_encode(once)) == once
    x = np.frombuffer(pcm, dtype="<i2").astype(int)
    y = np.frombuffer(once, dtype="<i2").astype(int)
    assert np.all(np.abs(x - y) <= np.abs(x) // 16 + 8)  # logarithmic: error grows with level


def test_ulaw_rejects_odd_length_pcm():
    with pytest.raises(AudioError):
        audio.ulaw_encode(b"\x01\x02\x03")


@given(pcm_bytes)
@settings(deadline=None)  # timing varies on shared CI machines
def test_pcm_float_round_trip_is_lossless(pcm):
    assert audio.float32_to_pcm16(audio.pcm16_to_float32(pcm)) == pcm


def test_float32_to_pcm16_clips_and_zeroes_nan():
    out = np.frombuffer(audio.float32_to_pcm16(np.array([2.0, -2.0, np.nan], dtype=np.float32)), dtype="<i2")
    assert out.tolist() == [32767, -32768, 0]


@given(n=st.integers(0, 4000), src=st.sampled_from(RATES), dst=st.sampled_from(RATES))
@settings(max_examples=60, deadline=None)
def test_resample_length(n, src, dst):
    pcm = np.zeros(n, dtype="<i2").tobytes()
    out = audio.resample(pcm, src, dst)
    assert abs(len(out) // 2 - n * dst / src) <= 1


def test_resample_keeps_a_tone():
    t = np.arange(8000) / 8000
    tone = (10000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    up = np.frombuffer(audio.resample(tone, 8000, 16000), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(up))
    assert np.argmax(spectrum) * 16000 / up.size == pytest.approx(440, abs=2)


@pytest.mark.parametrize("src,dst", [(8000, 16000), (16000, 8000), (22050, 16000), (48000, 8000)])
@given(cuts=st.lists(st.integers(1, 999), max_size=12))
@settings(max_examples=25, deadline=None)
def test_streaming_resampler_has_no_seams(src, dst, cuts):
    """Any chunking (odd byte counts included) gives the samples of one big chunk, give or
    take soxr's rounding of int16 output (a seam would be a burst of large errors)."""
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(src // 4) * 3000).astype("<i2").tobytes()
    whole = Resampler(src, dst)
    expected = whole.process(pcm) + whole.flush()
    chunked = Resampler(src, dst)
    out, pos = [], 0
    for cut in sorted(set(cuts)):
        out.append(chunked.process(pcm[pos:cut]))
        pos = cut
    out.append(chunked.process(pcm[pos:]))
    out.append(chunked.flush())
    got = np.frombuffer(b"".join(out), dtype="<i2").astype(int)
    want = np.frombuffer(expected, dtype="<i2").astype(int)
    assert got.size == want.size
    assert np.abs(got - want).max(initial=0) <= 4
    assert abs(len(expected) // 2 - (len(pcm) // 2) * dst / src) <= 2


def test_resampler_drops_and_counts_garbage():
    r = Resampler(8000, 16000)
    assert r.process("not audio") == b""  # type: ignore[arg-type]
    assert r.process(b"\x01") == b""  # half a sample is kept, not lost
    r.flush()
    assert (r.dropped_chunks, r.dropped_bytes) == (1, 1)


@pytest.mark.parametrize("rate", [0, 12345, 16000.0, "16000", None, True])
def test_unsupported_rates_raise_audio_error(rate):
    with pytest.raises(AudioError):
        audio.resample(b"\x00\x00", rate, 16000)
    with pytest.raises(AudioError):
        Resampler(16000, rate)


@given(chunks=st.lists(st.binary(max_size=900), max_size=30))
@settings(deadline=None)  # timing varies on shared CI machines
def test_framer_conserves_bytes(chunks):
    framer = Framer(16000)
    frames = [f for c in chunks for f in framer.push(c)]
    data = b"".join(chunks)
    assert all(len(f) == 640 for f in frames)
    assert b"".join(frames) == data[: len(frames) * 640]
    assert len(frames) * 640 + framer.pending == len(data)
    framer.flush()
    assert framer.dropped_bytes == len(data) % 640


def test_framer_mulaw_pad_and_garbage():
    framer = Framer(8000, sample_width=1)
    assert framer.push(b"\xff" * 100) == []
    assert framer.push(None) == []  # type: ignore[arg-type]
    frames = framer.push(b"\xff" * 300)
    assert [len(f) for f in frames] == [160, 160]
    assert framer.flush(pad=True) == [b"\xff" * 80 + b"\x00" * 80]
    assert framer.dropped_chunks == 1 and framer.dropped_bytes == 0


def test_iter_frames_pads_the_last_frame():
    frames = list(audio.iter_frames(b"\x01\x00" * 500, 16000))
    assert [len(f) for f in frames] == [640, 640]


def _wav(rate: int, channels: int, width: int, frames: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def test_wav_round_trip(tmp_path):
    pcm = (np.arange(1600) % 200 * 100 - 10000).astype("<i2").tobytes()
    path = audio.write_wav(tmp_path / "x.wav", pcm, 16000)
    assert audio.read_wav(path, rate=16000) == pcm
    assert audio.read_wav_info(path.read_bytes()) == (pcm, 16000)
    assert len(audio.read_wav(path, rate=8000)) == len(pcm) // 2


def test_wav_stereo_24_bit_44k_to_mono_16k():
    left = np.full(4410, 1000 << 8, dtype=np.int32)
    right = np.full(4410, 3000 << 8, dtype=np.int32)
    inter = np.stack([left, right], axis=1).reshape(-1)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in inter)
    mono = np.frombuffer(audio.read_wav(_wav(44100, 2, 3, raw), rate=16000), dtype="<i2")
    assert mono.size == 1600
    assert np.median(mono) == pytest.approx(2000, abs=2)


def test_wav_8_bit_unsigned():
    mono = np.frombuffer(audio.read_wav(_wav(8000, 1, 1, bytes([128, 255, 0])), rate=8000), dtype="<i2")
    assert mono.tolist() == [0, 127 << 8, -128 << 8]


@pytest.mark.parametrize("junk", [b"", b"RIFF", b"garbage" * 100, _wav(16000, 1, 2, b"")[:20]])
def test_garbage_wav_raises_audio_error(junk):
    with pytest.raises(AudioError):
        audio.read_wav(junk)


def test_wav_with_an_unsupported_rate_is_rejected():
    with pytest.raises(AudioError):
        audio.read_wav(_wav(12345, 1, 2, b"\x00\x00" * 100))


def test_interleave_stereo_pads_shorter_side():
    left = np.array([1, 2, 3], dtype="<i2").tobytes()
    right = np.array([9], dtype="<i2").tobytes()
    out = np.frombuffer(audio.interleave_stereo(left, right), dtype="<i2").tolist()
    assert out == [1, 9, 2, 0, 3, 0]
    with pytest.raises(AudioError):
        audio.interleave_stereo(b"\x00", b"")


def test_levels():
    assert audio.rms_dbfs(b"") == float("-inf")
    assert audio.rms_dbfs(b"\x00\x00" * 10) == float("-inf")
    assert audio.rms_dbfs(np.full(100, 16384, dtype="<i2").tobytes()) == pytest.approx(-6.02, abs=0.01)
    assert audio.duration_s(b"\x00" * 32000, 16000) == 1.0
