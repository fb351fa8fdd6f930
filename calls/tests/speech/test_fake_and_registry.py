import numpy as np
import pytest
from django.test import override_settings

from calls.speech import registry
from calls.speech.fake import FakeSttEngine, FakeTtsEngine
from calls.speech.vad import SileroVad, WebRtcVad

from .helpers import silence

FAKES = {"STT_ENGINE": "calls.speech.fake.FakeSttEngine", "TTS_ENGINE": "calls.speech.fake.FakeTtsEngine"}


def test_fake_stt_returns_configured_text_and_records_calls():
    stt = FakeSttEngine(texts=["book an appointment", "yes"])
    tone = (np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes()
    first = stt.transcribe(tone, language="en")
    assert first.text == "book an appointment" and len(first.words) == 3 and first.duration == 0.5
    assert stt.transcribe(tone).text == "yes"
    assert stt.transcribe(tone).text == "hello"  # the default once `texts` ran out
    assert stt.transcribe(silence(500)).is_empty
    assert len(stt.calls) == 4 and stt.calls[0]["language"] == "en"


def test_fake_tts_length_is_proportional_to_text():
    tts = FakeTtsEngine()
    short, long = tts.synthesize("Hi."), tts.synthesize("Hello, how are you today?")
    assert short.duration == pytest.approx(0.18) and long.duration == pytest.approx(1.5)
    assert [c.text for c in tts.stream("One. Two.", sample_rate=8000)] == ["One.", "Two."]
    assert tts.calls == ["Hi.", "Hello, how are you today?", "One. Two."]


def test_registry_uses_settings_and_caches_per_process():
    with override_settings(**FAKES):
        stt, tts = registry.get_stt(), registry.get_tts()
        assert isinstance(stt, FakeSttEngine) and isinstance(tts, FakeTtsEngine)
        assert registry.get_stt() is stt and registry.get_tts() is tts
        assert registry.get_stt("other").model == "other"
    assert not isinstance(registry.get_stt(), FakeSttEngine)  # override gone, cache cleared


def test_each_get_vad_is_a_new_stream_state():
    with override_settings(VAD_ENGINE="calls.speech.vad.WebRtcVad"):
        a, b = registry.get_vad(), registry.get_vad(aggressiveness=1)
        assert isinstance(a, WebRtcVad) and a is not b and b.aggressiveness == 1
    with override_settings(VAD_ENGINE="calls.speech.vad.SileroVad"):
        assert isinstance(registry.get_vad(threshold=0.6), SileroVad)


def test_fallback_engine_setting():
    assert registry.get_fallback_tts().name == "espeak"
