import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from calls.speech import stt
from calls.speech.audio import AudioError, resample
from calls.speech.errors import SttError
from calls.speech.stt import Transcript, WhisperEngine, Word, model_path

from .helpers import add_noise, asterisk_prompt, say, silence

pytestmark = pytest.mark.slow


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_transcribes_a_real_telephone_prompt(whisper):
    result = whisper.transcribe(asterisk_prompt("agent-pass"))  # 8 kHz recording, upsampled
    assert words(result.text) == "please enter your password followed by the pound key".split()
    assert result.confidence > 0.7
    assert result.model == "tiny.en" and result.language == "en"
    assert result.duration == pytest.approx(3.28, abs=0.05)
    assert [w.text.strip(",.").lower() for w in result.words][:3] == ["please", "enter", "your"]
    assert all(0 <= w.start <= w.end <= result.duration + 0.1 for w in result.words)
    assert 0 < result.elapsed < 10


def test_transcribes_synthesized_speech_in_line_noise(whisper):
    text = "I need to reschedule my appointment on Friday."
    noisy = add_noise(say(text), 20, kind="pink")
    assert words(whisper.transcribe(noisy).text) == words(text)


def test_short_answer(whisper):
    result = whisper.transcribe(silence(200) + say("Yes, that's right.") + silence(200))
    assert words(result.text) == ["yes", "that's", "right"]


def test_silence_and_empty_audio_give_an_empty_transcript(whisper):
    assert whisper.transcribe(b"").is_empty
    quiet = whisper.transcribe(silence(1500))
    assert quiet.is_empty and quiet.confidence == 0.0 and quiet.words == []


def test_noise_is_not_transcribed_into_words(whisper):
    rng = np.random.default_rng(3)
    hiss = (rng.standard_normal(16000) * 200).astype("<i2").tobytes()
    result = whisper.transcribe(hiss)
    assert len(words(result.text)) <= 1 and result.confidence < 0.5


def test_malformed_audio_raises_audio_error(whisper):
    with pytest.raises(AudioError):
        whisper.transcribe(b"\x01\x02\x03")
    with pytest.raises(AudioError):
        whisper.transcribe("hello")  # type: ignore[arg-type]


def test_without_word_timestamps(whisper):
    result = whisper.transcribe(asterisk_prompt("auth-thankyou"), word_timestamps=False)
    # Without words confidence comes from avg_logprob, which timestamp tokens pull down.
    assert words(result.text) == ["thank", "you"] and result.words == [] and result.confidence > 0.3


def test_transcript_survives_a_json_round_trip():
    t = Transcript("hi there", 0.9, [Word("hi", 0.0, 0.2, 0.95)], "en", 1.0, "tiny.en", 0.3)
    assert Transcript.from_dict(t.to_dict()) == t


def test_model_path_resolution():
    tiny = model_path("tiny.en")
    assert (tiny / "model.bin").is_file() and (tiny / "tokenizer.json").is_file()
    assert model_path(str(tiny)) == tiny  # a CTranslate2 directory by path
    for bad in ("small.en", "openai/whisper-tiny", "/nonexistent/model"):
        with pytest.raises(SttError) as exc:
            model_path(bad)  # never handed to faster-whisper, which would go to the hub
        assert exc.value.permanent


def test_base_model_is_joined_once_atomically_and_works(tmp_path):
    parts = stt._part_dirs()
    expected = sum(p.stat().st_size for d in parts for p in d.glob("model.bin.part*"))
    # A leftover from a crashed join (wrong size) is replaced, not trusted.
    (tmp_path / "whisper-base").mkdir()
    (tmp_path / "whisper-base" / "model.bin").write_bytes(b"partial")
    # Two processes race to join it; both must end up with the same complete model.
    code = (
        "from pathlib import Path; from calls.speech.stt import _join_base_model; "
        f"print(_join_base_model(Path({str(tmp_path)!r})))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    joined = tmp_path / "whisper-base"
    assert [p.returncode for p in procs] == [0, 0] and outputs == [str(joined)] * 2
    results: list[Path] = []
    with override_settings(SPEECH_CACHE_DIR=tmp_path):
        threads = [threading.Thread(target=lambda: results.append(model_path("base"))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [joined] * 3
        assert (joined / "model.bin").stat().st_size == expected
        leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != ".whisper-base.lock")
        assert leftovers == ["whisper-base"]  # no temp dirs left (the lock file stays)
        mtime = (joined / "model.bin").stat().st_mtime_ns
        assert model_path("base") == joined and (joined / "model.bin").stat().st_mtime_ns == mtime

        base = WhisperEngine("base", threads=2)
        result = base.transcribe(resample(asterisk_prompt("all-circuits-busy-now", 8000), 8000, 16000))
    assert words(result.text) == "all circuits are busy now".split()
    assert result.model == "base"


def test_a_corrupt_model_directory_is_a_permanent_error(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SttError) as exc:
        WhisperEngine(str(tmp_path)).transcribe(silence(500))
    assert exc.value.permanent


def test_models_load_once_per_process(whisper):
    again = WhisperEngine("tiny.en", threads=2)
    assert again._model() is whisper._model()


def test_registry_builds_the_configured_engine_once():
    from calls.speech.registry import get_stt

    with override_settings(STT_ENGINE="calls.speech.stt.WhisperEngine", STT_MODEL="tiny.en"):
        engine = get_stt()
        assert isinstance(engine, WhisperEngine) and engine.model == "tiny.en"
        assert get_stt() is engine
        assert get_stt("base").model == "base"
