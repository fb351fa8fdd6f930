import re
import time

import pytest
from django.test import override_settings

from calls.speech.audio import read_wav_info, resample, ulaw_decode, ulaw_encode
from calls.speech.base import Speech
from calls.speech.errors import TtsError
from calls.speech.synthesis import PhraseCache, stream_with_fallback, synthesize_with_fallback
from calls.speech.tts import EspeakEngine, PiperEngine
from core.text import split_sentences


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Dr. Smith sees you in 3.5 hours. Okay!", ["Dr. Smith sees you in 3.5 hours.", "Okay!"]),
        ("It costs $10.50. Shall I book it?", ["It costs $10.50.", "Shall I book it?"]),
        ("Call Mrs. J. R. Jones, e.g. tomorrow. Thanks.", ["Call Mrs. J. R. Jones, e.g. tomorrow.", "Thanks."]),
        ("Room No. 5 is free. No. It is not.", ["Room No. 5 is free.", "No.", "It is not."]),
        ("Open at 9 a.m. and close at 5 p.m. Tomorrow too.", ["Open at 9 a.m. and close at 5 p.m.", "Tomorrow too."]),
        ("Wait... what?! \"Really.\" Yes", ["Wait...", "what?!", "\"Really.\"", "Yes"]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ("Visit example.com today.", ["Visit example.com today."]),
        ("", []),
        ("  ...  !!", []),
        ("\x00Hi [[ h ]]", ["Hi [ h ]"]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected



@pytest.mark.slow
def test_piper_speech_transcribes_back_to_its_text(piper, whisper):
    text = "Your appointment is confirmed for Tuesday morning. We will send you a reminder."
    speech = piper.synthesize(text, sample_rate=16000)
    assert speech.engine == "piper" and speech.sample_rate == 16000
    assert 3.0 < speech.duration < 8.0
    assert words(whisper.transcribe(speech.audio).text) == words(text)


@pytest.mark.slow
def test_piper_speech_survives_the_phone_line(piper, whisper):
    text = "Please hold while I check your account."
    line = ulaw_decode(ulaw_encode(piper.synthesize(text, sample_rate=8000).audio))
    assert words(whisper.transcribe(resample(line, 8000, 16000)).text) == words(text)


@pytest.mark.slow
def test_piper_native_rate_and_speaking_rate(piper):
    native = piper.synthesize("Thank you for calling.")
    assert native.sample_rate == 22050 == piper.native_rate()
    fast = piper.synthesize("Thank you for calling.", rate=1.5)
    assert fast.duration == pytest.approx(native.duration / 1.5, rel=0.15)
    with pytest.raises(TtsError):
        piper.synthesize("Hi.", rate=10)


@pytest.mark.slow
def test_piper_streams_sentence_by_sentence(piper):
    text = "First sentence here. Second one follows. And a third."
    started = time.perf_counter()
    chunks = piper.stream(text, sample_rate=16000)
    first = next(chunks)
    first_at = time.perf_counter() - started
    rest = list(chunks)
    total = time.perf_counter() - started
    assert [c.text for c in [first, *rest]] == split_sentences(text)
    assert all(c.sample_rate == 16000 and c.audio for c in [first, *rest])
    assert first_at < total  # the first sentence is playable before the others exist


@pytest.mark.slow
def test_default_piper_voice_is_random_but_valid(whisper):
    engine = PiperEngine()  # settings.TTS_VOICE = "joe", trained noise scales
    speech = engine.synthesize("Goodbye and have a nice day.", sample_rate=16000)
    assert words(whisper.transcribe(speech.audio).text) == ["goodbye", "and", "have", "a", "nice", "day"]


@pytest.mark.slow
@pytest.mark.parametrize("text", ["", "   ", "!!!", "😀", "\x00\x07 hi", "[[ xyz ]]", "a" * 200])
def test_odd_text_never_crashes(piper, text):
    speech = piper.synthesize(text, sample_rate=16000)
    assert isinstance(speech, Speech) and len(speech.audio) % 2 == 0


@pytest.mark.slow
def test_espeak_speaks(whisper):
    speech = EspeakEngine().synthesize("Hello, this is a test.", sample_rate=16000)
    assert speech.engine == "espeak" and speech.duration > 1.0
    assert {"hello", "test"} <= set(words(whisper.transcribe(speech.audio).text))


def test_espeak_missing_binary_is_permanent():
    with pytest.raises(TtsError) as exc:
        EspeakEngine(binary="espeak-ng-not-installed").synthesize("Hello.")
    assert exc.value.permanent


@pytest.mark.slow
def test_fallback_to_espeak_when_the_piper_voice_is_missing(tmp_path):
    with override_settings(TTS_VOICE=str(tmp_path / "missing.onnx")):
        speech = synthesize_with_fallback("We are experiencing technical difficulties.", sample_rate=8000)
    assert speech.engine == "espeak" and speech.sample_rate == 8000 and speech.duration > 1.0
    assert "not found" in speech.fallback_reason


@pytest.mark.slow
def test_fallback_when_the_piper_voice_is_corrupt(tmp_path):
    voice = tmp_path / "broken.onnx"
    voice.write_bytes(b"\x00garbage" * 100)
    (tmp_path / "broken.onnx.json").write_text('{"audio": {"sample_rate": 22050}}')
    with override_settings(TTS_VOICE=str(voice)):
        chunks = list(stream_with_fallback("One. Two."))
    assert [c.engine for c in chunks] == ["espeak", "espeak"]
    assert all(c.fallback_reason and "broken.onnx" in c.fallback_reason for c in chunks)


@pytest.mark.slow
def test_no_fallback_when_piper_works():
    speech = synthesize_with_fallback("All good.", sample_rate=16000)
    assert speech.engine == "piper" and speech.fallback_reason is None


@pytest.mark.slow
def test_phrase_cache_synthesizes_once_and_persists(piper, tmp_path):
    cache = PhraseCache(piper, cache_dir=tmp_path, sample_rate=8000)
    greeting = cache.get("Thanks for calling. How can I help?")
    assert cache.synthesized == 1 and greeting.sample_rate == 8000
    assert cache.get("Thanks for calling. How can I help?") is greeting
    assert cache.synthesized == 1

    files = list((tmp_path / "phrases").glob("*.wav"))
    assert len(files) == 1 and read_wav_info(files[0]) == (greeting.audio, 8000)
    assert not list((tmp_path / "phrases").glob(".*"))  # no temp files left behind

    other_worker = PhraseCache(piper, cache_dir=tmp_path, sample_rate=8000)
    assert other_worker.get("Thanks for calling. How can I help?").audio == greeting.audio
    assert other_worker.synthesized == 0

    other_worker.get("Thanks for calling. How can I help?", rate=1.2)  # a different key
    PhraseCache(piper, cache_dir=tmp_path, sample_rate=16000).warm(["One moment."])
    assert other_worker.synthesized == 1 and len(list((tmp_path / "phrases").glob("*.wav"))) == 3


@pytest.mark.slow
def test_phrase_cache_ignores_a_corrupt_file(piper, tmp_path):
    cache = PhraseCache(piper, cache_dir=tmp_path)
    key = cache.key("Goodbye.")
    (tmp_path / "phrases").mkdir()
    (tmp_path / "phrases" / f"{key}.wav").write_bytes(b"junk")
    assert cache.get("Goodbye.").duration > 0.3 and cache.synthesized == 1
