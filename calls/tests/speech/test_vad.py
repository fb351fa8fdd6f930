import numpy as np
import pytest

from calls.speech.audio import AudioError, iter_frames, resample, ulaw_decode, ulaw_encode
from calls.speech.vad import Endpointer, NoiseFloor, SileroVad, WebRtcVad

from .helpers import add_noise, noise_pcm, say, silence, speech_extent

FRAME = b"\x00\x00" * 320  # 20 ms at 16 kHz


def run(ep: Endpointer, decisions: str):
    """Feed a decision string ("1" voiced, "0" not); return (frame index, event) pairs."""
    out = []
    for i, d in enumerate(decisions):
        out += [(i, e) for e in ep.process(FRAME, speech=d == "1")]
    return out


def kinds(events):
    return [e.kind for _, e in events]


def test_speech_start_needs_enough_voiced_frames_in_the_window():
    ep = Endpointer(start_ms=80, start_window_ms=200, start_gate_db=None)
    assert run(ep, "1010000100") == []  # 3 voiced of 10: noise
    ep = Endpointer(start_ms=80, start_window_ms=200, start_gate_db=None)
    events = run(ep, "0001101100")
    assert kinds(events) == ["speech_start"]
    index, event = events[0]
    assert index == 7 and event.start_ms == 60  # first voiced frame of the window


def test_utterance_ends_after_silence_with_preroll_and_trailing_audio():
    ep = Endpointer(silence_ms=300, pause_ms=100, preroll_ms=200, start_gate_db=None)
    events = run(ep, "0" * 20 + "1" * 30 + "0" * 20)
    assert kinds(events) == ["speech_start", "pause", "speech_end"]
    pause, end = events[1][1], events[2][1]
    assert (end.start_ms, end.end_ms, end.at_ms) == (400, 1000, 1300)
    # 200 ms pre-roll + 600 ms speech + 100 ms trailing = 900 ms of audio, identical at pause and end
    assert len(end.audio) == 900 * 32 and pause.audio == end.audio
    assert pause.at_ms == 1100


def test_pause_then_resume_keeps_one_utterance():
    ep = Endpointer(silence_ms=300, pause_ms=100, start_gate_db=None)
    events = run(ep, "1" * 20 + "0" * 8 + "1" * 20 + "0" * 20)
    assert kinds(events) == ["speech_start", "pause", "resume", "pause", "speech_end"]
    end = events[-1][1]
    assert (end.start_ms, end.end_ms) == (0, 960)


def test_short_blips_are_discarded():
    ep = Endpointer(min_utterance_ms=160, start_gate_db=None)
    events = run(ep, "0" * 5 + "11111" + "0" * 20)  # 100 ms of "speech": a click or a cough
    assert kinds(events) == ["speech_start", "discard"]


def test_isolated_noise_frames_in_the_trailing_silence_do_not_hold_the_turn_open():
    ep = Endpointer(silence_ms=300, resume_ms=60, start_gate_db=None)
    events = run(ep, "1" * 20 + "0000100001000010" + "0" * 10)
    assert kinds(events)[-1] == "speech_end"
    assert events[-1][1].end_ms == 400


def test_max_utterance_length_truncates():
    ep = Endpointer(max_utterance_ms=1000, start_gate_db=None)
    events = run(ep, "1" * 80)
    ends = [e for _, e in events if e.kind == "speech_end"]
    assert ends and ends[0].truncated and len(ends[0].audio) == 1000 * 32


def test_reset_drops_the_utterance_but_keeps_the_timeline():
    ep = Endpointer(start_gate_db=None)
    assert kinds(run(ep, "1" * 10)) == ["speech_start"]
    ep.reset()  # the agent took the turn
    assert not ep.in_speech and ep.flush() == [] and ep.frames_seen == 10
    events = run(ep, "1" * 10 + "0" * 15)
    assert kinds(events) == ["speech_start", "pause", "speech_end"] and events[-1][1].start_ms == 200


def test_flush_closes_an_open_utterance():
    ep = Endpointer(start_gate_db=None)
    run(ep, "1" * 30)
    (end,) = ep.flush()
    assert end.kind == "speech_end" and end.end_ms == 600
    assert ep.flush() == []


def test_bad_frames_are_dropped_and_counted():
    ep = Endpointer(WebRtcVad(), rate=16000)
    assert ep.process(b"\x00" * 100) == []
    assert ep.process(None) == []  # type: ignore[arg-type]
    assert ep.process(b"\x00" * 641) == []
    assert ep.dropped_frames == 3 and ep.frames_seen == 0
    with pytest.raises(ValueError):
        Endpointer().process(FRAME)  # no VAD and no decision: a programming error


@pytest.mark.parametrize("vad", [WebRtcVad(), SileroVad()], ids=["webrtc", "silero"])
def test_vads_reject_wrong_frames(vad):
    with pytest.raises(AudioError):
        vad.is_speech(b"\x00" * 10, 16000)
    with pytest.raises(AudioError):
        vad.is_speech(FRAME, 11025)
    assert vad.is_speech(FRAME, 16000) is False


def test_noise_floor_flags_frames_above_background():
    floor = NoiseFloor(margin_db=6)
    rng = np.random.default_rng(0)
    hiss = [(rng.standard_normal(320) * 300).astype("<i2").tobytes() for _ in range(50)]
    assert sum(floor.stands_out(f) for f in hiss) < 10
    loud = (rng.standard_normal(320) * 3000).astype("<i2").tobytes()
    assert floor.stands_out(loud)


# --- Real speech, real VADs ------------------------------------------------------------------

SENTENCES = ["I would like to book an appointment for next Tuesday.", "No.", "Please call me back tomorrow morning."]


def conversation() -> tuple[bytes, list[tuple[int, int]]]:
    """Three Piper utterances between silences, with their true (start, end) in ms."""
    parts = [silence(600), say(SENTENCES[0]), silence(1200), say(SENTENCES[1]), silence(1000),
             say(SENTENCES[2]), silence(800)]
    truth, pos = [], 0
    for part in parts:
        if any(part):
            start, end = speech_extent(part)
            truth.append((pos + start, pos + end))
        pos += len(part) // 32
    return b"".join(parts), truth


def endpoint(pcm: bytes, rate: int, vad) -> list:
    ep = Endpointer(vad, rate=rate)
    events = [e for frame in iter_frames(pcm, rate) for e in ep.process(frame)]
    return events + ep.flush()


def telephone(pcm16k: bytes) -> bytes:
    """What a phone line delivers: 8 kHz μ-law, decoded back to PCM16."""
    return ulaw_decode(ulaw_encode(resample(pcm16k, 16000, 8000)))


CASES = [
    ("webrtc", None, 16000),
    ("webrtc", ("white", 20), 16000),
    ("webrtc", ("pink", 15), 16000),
    ("webrtc", ("white", 20), 8000),
    ("webrtc", ("pink", 15), 8000),
    ("silero", ("white", 15), 16000),
    ("silero", ("pink", 10), 16000),
    ("silero", ("pink", 15), 8000),
]


@pytest.mark.slow
@pytest.mark.parametrize("vad_name,noise,rate", CASES)
def test_endpointing_finds_each_utterance_in_noise(vad_name, noise, rate):
    clean, truth = conversation()
    pcm = clean if noise is None else add_noise(clean, noise[1], kind=noise[0])
    if rate == 8000:
        pcm = telephone(pcm)
    events = endpoint(pcm, rate, WebRtcVad(3) if vad_name == "webrtc" else SileroVad())
    ends = [e for e in events if e.kind == "speech_end"]
    assert [e.kind for e in events if e.kind in ("discard",)] == []
    assert len(ends) == len(truth), [(e.start_ms, e.end_ms) for e in ends]
    for end, (start_ms, end_ms) in zip(ends, truth, strict=True):
        assert start_ms - 100 <= end.start_ms <= start_ms + 200
        assert end_ms - 150 <= end.end_ms <= end_ms + 250
        assert end.at_ms - end.end_ms == 300  # the endpointing silence, exactly
        # pre-roll (up to 200 ms) + speech + 100 ms trailing, at the stream's rate
        ms = len(end.audio) * 1000 // (2 * rate)
        assert end.end_ms - end.start_ms + 100 <= ms <= end.end_ms - end.start_ms + 300
        assert not end.truncated


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_line_noise_alone_never_starts_speech(kind):
    hiss = noise_pcm(4000, -40, kind=kind)  # a noisy line: ~20 dB below speech
    for vad in (WebRtcVad(3), SileroVad()):
        events = endpoint(hiss, 16000, vad)
        assert [e.kind for e in events] == [], vad.name


@pytest.mark.slow
def test_speech_from_the_first_frame_is_not_gated_out():
    """The noise gate has no floor yet when the caller talks straight away."""
    pcm = say(SENTENCES[2]) + silence(500)
    ends = [e for e in endpoint(pcm, 16000, WebRtcVad(3)) if e.kind == "speech_end"]
    assert len(ends) == 1 and ends[0].start_ms <= 150


@pytest.mark.slow
def test_silero_at_8k_upsamples_and_scores_speech():
    vad = SileroVad()
    pcm = telephone(say(SENTENCES[2]))
    probs = [vad.speech_probability(f, 8000) for f in iter_frames(pcm, 8000)]
    assert max(probs) > 0.9
    vad.reset()
    assert vad.speech_probability(b"\x00\x00" * 160, 8000) == 0.0
