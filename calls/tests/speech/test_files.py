import re

import pytest

from calls.speech.audio import AudioError, read_wav_info, resample, write_wav
from calls.speech.files import synthesize_to_file, transcribe_file

from .helpers import ASTERISK_SOUNDS, asterisk_prompt

pytestmark = pytest.mark.slow


def test_transcribe_file_reads_any_wav(tmp_path):
    result = transcribe_file(ASTERISK_SOUNDS / "all-circuits-busy-now.wav", model="tiny.en")
    assert re.findall(r"[a-z]+", result.text.lower()) == ["all", "circuits", "are", "busy", "now"]
    # the same prompt as a 48 kHz file
    wav = write_wav(tmp_path / "hi.wav", resample(asterisk_prompt("all-circuits-busy-now"), 16000, 48000), 48000)
    assert transcribe_file(wav).text == result.text


def test_transcribe_file_rejects_garbage(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"definitely not audio")
    with pytest.raises(AudioError):
        transcribe_file(junk)


def test_synthesize_to_file_round_trip(tmp_path):
    out = tmp_path / "nested" / "greeting.wav"
    speech = synthesize_to_file("Welcome to the clinic.", out, rate=1.1, sample_rate=8000)
    assert speech.engine == "piper"
    assert read_wav_info(out) == (speech.audio, 8000)
    text = transcribe_file(out).text.lower()
    assert "welcome" in text and "clinic" in text
