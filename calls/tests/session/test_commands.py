"""manage.py transcribe, synthesize and simulate_call, with the real engines."""

import re
import wave
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calls.models import Call, Turn
from calls.speech.audio import read_wav_info, write_wav
from calls.tests.speech.helpers import ASTERISK_SOUNDS, say

pytestmark = pytest.mark.slow


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_transcribe_prints_each_file(tmp_path):
    spoken = tmp_path / "spoken.wav"
    write_wav(spoken, say("Please call me back tomorrow."), 16000)
    out = run("transcribe", str(ASTERISK_SOUNDS / "agent-pass.wav"), str(spoken), "--words")
    lines = out.splitlines()
    assert lines[0].startswith(f"{ASTERISK_SOUNDS / 'agent-pass.wav'}: ")
    assert words(lines[0].split(": ", 1)[1]) == "please enter your password followed by the pound key".split()
    assert any(words(line)[-5:] == ["please", "call", "me", "back", "tomorrow"] for line in lines)


def test_transcribe_reports_unreadable_files(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    with pytest.raises(CommandError, match="1 of 1 files"):
        run("transcribe", str(junk))


def test_synthesize_writes_a_wav_that_transcribes_back(tmp_path):
    out_path = tmp_path / "out.wav"
    out = run("synthesize", "Your appointment is confirmed.", "-o", str(out_path), "--rate", "1.1",
              "--sample-rate", "8000")
    assert "wrote" in out
    pcm, rate = read_wav_info(out_path)
    assert rate == 8000 and len(pcm) > 8000
    assert "appointment" in words(run("transcribe", str(out_path)))
    with pytest.raises(CommandError):
        run("synthesize", "  ", "-o", str(out_path))


@pytest.mark.django_db(transaction=True)
def test_simulate_call_runs_a_stored_call(tmp_path, agent, no_postcall_pipeline, warm_speech):
    question = tmp_path / "question.wav"
    write_wav(question, say("What time do you open tomorrow?"), 16000)
    out = run("simulate_call", "--agent", agent.slug, "--audio", str(question), "--out", str(tmp_path / "out"),
              "--gap", "0.3")
    call = Call.objects.get()
    assert call.status == Call.Status.COMPLETED and call.channel == Call.Channel.API
    caller = Turn.objects.get(call=call, speaker="caller")
    assert {"open", "tomorrow"} <= set(words(caller.text))
    assert "caller: What time do you open tomorrow?" in out.replace("  ", " ") or "open tomorrow" in out
    assert re.search(rf"^\s+{caller.index} caller\s+\d+\s+\d+", out, re.M)  # the turn's timings are printed
    with wave.open(str(tmp_path / "out" / "recording.wav")) as wav:
        assert wav.getnchannels() == 2
    assert (tmp_path / "out" / "agent.wav").stat().st_size > 1000


@pytest.mark.django_db
def test_simulate_call_needs_a_known_agent(tmp_path):
    with pytest.raises(CommandError, match="No active agent"):
        run("simulate_call", "--agent", "nobody", "--audio", str(ASTERISK_SOUNDS / "agent-pass.wav"))
