"""The live-turn fast path: a 15 s encoder window, greedy, no timestamps."""

import re

import numpy as np
import pytest
from django.test import override_settings

from calls.speech import executor
from calls.speech.fake import FakeSttEngine

from .helpers import asterisk_prompt, noise_pcm, say, silence

pytestmark = pytest.mark.slow


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_live_path_transcribes_a_telephone_prompt_like_the_full_one(whisper):
    audio = asterisk_prompt("agent-pass")
    live = whisper.transcribe_live(audio)
    assert words(live.text) == "please enter your password followed by the pound key".split()
    assert live.words == [] and 0.5 < live.confidence <= 1 and live.duration == pytest.approx(3.3, abs=0.1)


def test_live_path_on_synthesized_speech_silence_and_noise(whisper):
    assert {"appointment", "tuesday"} <= set(words(whisper.transcribe_live(say("I need an appointment on Tuesday.")).text))
    assert whisper.transcribe_live(silence(1000)).text == ""
    assert whisper.transcribe_live(b"").text == ""
    assert whisper.transcribe_live(noise_pcm(1000, -30)).text == ""


def test_long_audio_takes_the_full_path(whisper):
    long = np.tile(np.frombuffer(asterisk_prompt("agent-pass"), dtype="<i2"), 4).tobytes()  # 13 s
    assert words(whisper.transcribe_live(long).text).count("password") == 4


async def test_executor_routes_live_turns(whisper):
    with override_settings(SPEECH_EXECUTION="thread", STT_MODEL="tiny.en"):
        transcript = await executor.run_stt(asterisk_prompt("agent-pass"), live=True)
    assert "password" in words(transcript.text) and transcript.words == []


def test_other_engines_fall_back_to_transcribe():
    engine = FakeSttEngine(text="hi there")
    assert engine.transcribe_live(say("Hello.")).text == "hi there"
    assert engine.calls[-1]["word_timestamps"] is False
