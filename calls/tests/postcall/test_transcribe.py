"""The recording's two sides become one time-ordered transcript, beside the untouched live turns."""

import numpy as np
import pytest

from calls.models import Call, CallTranscript
from calls.postcall.errors import StageError, StageSkipped
from calls.postcall.transcribe import Region, read_wav_channels, recording_transcribe, side_segments, speech_regions
from calls.services import call_attach_recording
from calls.speech.audio import interleave_stereo, wav_bytes
from calls.speech.stt import Transcript, Word
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    # Speech-like: a voiced, modulated tone that WebRTC VAD takes for speech.
    return (6000 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


@pytest.fixture
def fake_stt(settings):
    from calls.speech import registry

    settings.STT_ENGINE = "calls.speech.fake.FakeSttEngine"
    registry.clear_caches()
    yield
    registry.clear_caches()


def test_speech_regions_follow_the_talking():
    pcm = np.concatenate([silence(1), tone(1.5), silence(2), tone(0.8), silence(1)]).tobytes()
    regions = speech_regions(pcm)
    assert len(regions) == 2
    assert abs(regions[0].start - 0.85) < 0.2 and abs(regions[0].end - 2.65) < 0.3
    assert abs(regions[1].start - 4.35) < 0.2


def test_words_map_back_to_when_they_were_said_and_keep_whispers_spacing():
    placed = [Region(1.0, 3.0, 0.0), Region(10.0, 11.0, 2.5)]
    transcript = Transcript(
        text="Heavy traffic on I-80. It's 4:30.",
        words=[Word("Heavy", 0.1, 0.4, 0.9), Word("traffic", 0.4, 0.8, 0.9), Word("on", 0.8, 0.9, 0.9),
               Word("I", 0.9, 1.0, 0.9), Word("-80.", 1.0, 1.4, 0.9),
               Word("It's", 2.05, 2.3, 0.8),  # in the gap: it opens the next utterance
               Word("4", 2.6, 2.8, 0.9), Word(":30.", 2.8, 3.0, 0.9)],
    )
    segments = side_segments(transcript, placed, "caller")
    assert [(s["text"], s["start"]) for s in segments] == [("Heavy traffic on I-80.", 1.1), ("It's 4:30.", 10.0)]


def test_a_stereo_recording_gives_speaker_labelled_segments_in_time_order(fake_stt, settings):
    call = call_with_turns(scenarios.CHECK_IN)
    left = np.concatenate([silence(2.5), tone(1.0), silence(1.0)])  # the caller answers
    right = np.concatenate([silence(0.3), tone(1.5), silence(2.7)])  # the agent asks first
    call_attach_recording(call=call, wav_bytes=wav_bytes(interleave_stereo(left.tobytes(), right.tobytes()), 16000,
                                                         channels=2))
    live = list(call.turns.values_list("text", flat=True))
    detail = recording_transcribe(call=Call.objects.get(pk=call.pk))

    transcript = CallTranscript.objects.get(call=call)
    assert [s["speaker"] for s in transcript.segments] == ["agent", "caller"]
    assert transcript.segments[0]["start"] < transcript.segments[1]["start"]
    assert transcript.text == "Agent: hello\nCaller: hello"
    assert (transcript.model, transcript.beam_size) == ("base", settings.POSTCALL_STT_BEAM_SIZE)
    assert detail["segments"] == 2 and abs(detail["audio_seconds"] - 4.5) < 0.01
    assert list(call.turns.values_list("text", flat=True)) == live

    recording_transcribe(call=Call.objects.get(pk=call.pk))  # again: replaced, not duplicated
    assert CallTranscript.objects.filter(call=call).count() == 1


def test_a_mono_recording_is_one_mixed_side(fake_stt):
    call = call_with_turns(scenarios.CHECK_IN)
    call_attach_recording(call=call, wav_bytes=wav_bytes(np.concatenate([tone(1), silence(1)]).tobytes(), 8000))
    recording_transcribe(call=Call.objects.get(pk=call.pk))
    assert [s["speaker"] for s in CallTranscript.objects.get(call=call).segments] == ["mixed"]


def test_bad_recordings(fake_stt):
    call = call_with_turns(scenarios.CHECK_IN)
    with pytest.raises(StageSkipped):
        recording_transcribe(call=call)
    call_attach_recording(call=call, wav_bytes=b"not a wav at all")
    with pytest.raises(StageError) as error:
        recording_transcribe(call=Call.objects.get(pk=call.pk))
    assert error.value.permanent and "not a readable PCM WAV" in error.value.message


def test_read_wav_channels_splits_left_from_right():
    left, right = np.array([1, 2, 3], dtype=np.int16), np.array([-1, -2, -3], dtype=np.int16)
    channels, rate = read_wav_channels(wav_bytes(interleave_stereo(left.tobytes(), right.tobytes()), 16000, channels=2))
    assert rate == 16000 and channels == [left.tobytes(), right.tobytes()]


@pytest.mark.slow
def test_whisper_base_transcribes_a_piper_conversation_side_by_side():
    from calls.tests.postcall.harness import recording_for

    lines = scenarios.CHECK_IN.lines[:4]
    wav, spans = recording_for(lines)
    call = call_with_turns(scenarios.CHECK_IN)
    call_attach_recording(call=call, wav_bytes=wav)
    recording_transcribe(call=Call.objects.get(pk=call.pk))
    segments = CallTranscript.objects.get(call=call).segments
    assert [s["speaker"] for s in segments] == [speaker for speaker, _ in lines]
    for segment, (start_ms, _) in zip(segments, spans):
        assert abs(segment["start"] - start_ms / 1000) < 0.6, segment
    assert "I-80 near Reno" in segments[1]["text"]
    assert "430" in "".join(ch for ch in segments[3]["text"] if ch.isdigit())  # "4:30", "4.30" or "430"
