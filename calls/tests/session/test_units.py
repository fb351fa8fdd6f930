"""Heard-text estimation, the recording as heard, and paced, bounded playout."""

import asyncio
import time
import tracemalloc

import numpy as np
import pytest

from agents.tests.factories import AgentConfigFactory
from calls.models import Call
from calls.services import call_attach_recording, call_start
from calls.session.heard import PlayedSentence, heard_prefix, heard_text, speech_span
from calls.session.playout import Playout
from calls.session.recording import Recorder, split_stereo
from calls.speech.audio import read_wav_info


def tone(ms: int, rate: int = 16000, amp: float = 0.3) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (amp * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def silence(ms: int, rate: int = 16000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


# --- heard text ---------------------------------------------------------------------------------

def test_speech_span_ignores_the_padding_around_a_sentence():
    pcm = silence(200) + tone(1000) + silence(300)
    start, end = speech_span(pcm, 16000)
    assert abs(start - 3200) <= 160 and abs(end - 19200) <= 160


@pytest.mark.parametrize("played, expected", [
    (0, ""), (3200, ""), (19200, "one two three four"), (50_000, "one two three four"),
    (3200 + 16000 * 0.5, "one two"),  # half the speech: the first two (equal-length) words
    (3200 + 16000 * 0.2, "one"),
])
def test_heard_prefix_by_played_fraction(played, expected):
    assert heard_prefix("one two three four", int(played), (3200, 19200)) == expected


def test_long_words_take_longer():
    # "a" is short and "extraordinary" long: 30% of the time is still inside the long word.
    assert heard_prefix("a extraordinary b", 30, (0, 100)) == "a"


def test_heard_text_joins_finished_and_partly_played_sentences():
    sentences = [
        PlayedSentence("First sentence here.", 1000, (100, 900), played=1000),
        PlayedSentence("Second one is cut off.", 1000, (0, 1000), played=500),
        PlayedSentence("Never played.", 1000, (0, 1000), played=0),
    ]
    assert heard_text(sentences) == "First sentence here. Second one"


# --- the recording ------------------------------------------------------------------------------

def test_recording_places_both_sides_on_one_timeline():
    rec = Recorder(agent_rate=8000, max_seconds=10)
    frame16, frame8 = tone(20, 16000), tone(20, 8000)
    for i in range(50):  # caller speaks for the first second
        rec.caller.write(frame16, i * 0.02)
    for i in range(50, 100):
        rec.caller.write(silence(20), i * 0.02)
    for i in range(25):  # the agent answers at 1.5 s, for half a second
        rec.agent.write(frame8, 1.5 + i * 0.02)
    pcm, rate = read_wav_info(rec.stereo_wav())
    left, right = split_stereo(rec.stereo_pcm())
    assert rate == 16000 and len(left) == 32000
    ms = lambda a, b: slice(a * 16, b * 16)  # noqa: E731
    assert np.abs(left[ms(0, 1000)]).max() > 5000 and np.abs(left[ms(1000, 2000)]).max() == 0
    assert np.abs(right[ms(0, 1490)]).max() < 200 and np.abs(right[ms(1510, 1990)]).mean() > 3000


def test_recording_absorbs_jitter_but_keeps_real_gaps():
    rec = Recorder(agent_rate=16000, max_seconds=10)
    rec.agent.write(tone(20), 0.0)
    rec.agent.write(tone(20), 0.05)  # 30 ms late: jitter, appended back to back
    assert rec.agent.seconds == pytest.approx(0.04)
    rec.agent.write(tone(20), 1.0)  # the stream really stopped: the gap stays silent
    assert rec.agent.seconds == pytest.approx(1.02)


def test_recording_is_capped():
    rec = Recorder(agent_rate=16000, max_seconds=1)
    for i in range(100):
        rec.caller.write(tone(20), i * 0.02)
    assert rec.caller.seconds == pytest.approx(1.0) and rec.caller.truncated


def test_a_long_call_at_48_khz_keeps_the_recording_memory_bounded():
    # Ten minutes of a call whose client plays agent audio at 48 kHz: held whole in memory,
    # both sides came to ~77 MB (the agent's at 48 kHz until the end); spooled to disk at 16 kHz,
    # a few hundred KB.
    rec = Recorder(agent_rate=48000, max_seconds=900)
    caller, agent = tone(20, 16000), tone(20, 48000)
    tracemalloc.start()
    try:
        for i in range(10 * 60 * 50):
            rec.caller.write(caller, i * 0.02)
            rec.agent.write(agent, i * 0.02)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2_000_000
    assert rec.memory_bytes <= 2 * 256 * 1024
    assert rec.agent.rate == 16000 and rec.agent.seconds == pytest.approx(600, abs=0.1)
    with rec.stereo_wav_file() as wav:
        pcm, rate = read_wav_info(wav)
    assert rate == 16000 and len(pcm) == pytest.approx(600 * 16000 * 2, rel=0.001)  # read back as mono
    rec.close()


def test_the_agent_track_is_resampled_as_a_stream_without_clicks():
    rec = Recorder(agent_rate=48000, max_seconds=10)
    for i in range(100):  # a continuous 440 Hz tone sent as 2 s of 20 ms frames
        t = (np.arange(960) + i * 960) / 48000
        rec.agent.write((0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes(), i * 0.02)
    _, right = split_stereo(rec.stereo_pcm())
    steady = right[800:-800].astype(np.float64)
    # A clean tone at 16 kHz: sample-to-sample steps stay under amplitude * 2*pi*440/16000.
    assert np.abs(np.diff(steady)).max() < 0.3 * 32767 * 2 * np.pi * 440 / 16000 * 1.1
    assert len(right) == pytest.approx(32000, abs=20)


# --- playout ------------------------------------------------------------------------------------

class Line:
    def __init__(self, delay: float = 0.0):
        self.sent: list[float] = []
        self.delay = delay

    async def send(self, frame: bytes) -> None:
        self.sent.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)


async def feed(playout, n: int) -> None:
    for _ in range(n):
        await playout.put(bytes(320))


async def stop(*tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _run(playout):
    task = asyncio.create_task(playout.run())
    await asyncio.sleep(0)
    return task


async def test_frames_go_out_every_20_ms():
    line = Line()
    playout = Playout(line.send, rate=8000)
    task = await _run(playout)
    for _ in range(50):
        await playout.put(bytes(320))
    assert await playout.drained()
    task.cancel()
    gaps = np.diff(line.sent)
    assert len(line.sent) == 50
    assert 0.95 <= line.sent[-1] - line.sent[0] <= 1.05 and gaps.max() < 0.045


async def test_the_queue_is_bounded_and_the_producer_waits():
    line = Line()
    playout = Playout(line.send, rate=8000, max_frames=10)
    task = await _run(playout)
    producer = asyncio.create_task(feed(playout, 200))
    await asyncio.sleep(0.2)
    assert playout.queued <= 10 and not producer.done()
    await stop(producer, task)


async def test_a_slow_client_delays_audio_instead_of_buffering_it():
    line = Line(delay=0.06)  # each write takes three frames' time
    playout = Playout(line.send, rate=8000, max_frames=10)
    task = await _run(playout)
    high_water = 0

    async def produce():
        nonlocal high_water
        for _ in range(40):
            await playout.put(bytes(320))
            high_water = max(high_water, playout.queued)

    await asyncio.wait_for(produce(), 5)
    task.cancel()
    assert high_water <= 10


async def test_clear_stops_audio_within_one_frame():
    line = Line()
    playout = Playout(line.send, rate=8000)
    task = await _run(playout)
    producer = asyncio.create_task(feed(playout, 100))
    await asyncio.sleep(0.3)
    cleared_at = time.monotonic()
    dropped = playout.clear()
    producer.cancel()  # the reply's speaker stops too, as the session's barge-in does
    await asyncio.sleep(0.2)
    await stop(producer, task)
    assert dropped > 0 and len([t for t in line.sent if t > cleared_at]) == 0


async def test_gaps_inside_one_reply_count_as_underruns():
    line = Line()
    playout = Playout(line.send, rate=8000)
    task = await _run(playout)
    reply, other = object(), object()
    for _ in range(3):
        await playout.put(bytes(320), unit=reply)
    await playout.drained()
    await asyncio.sleep(0.15)
    await playout.put(bytes(320), unit=reply)  # the next sentence came late: an audible gap
    await playout.drained()
    await asyncio.sleep(0.15)
    await playout.put(bytes(320), unit=other)  # a new reply after a pause is not an underrun
    await playout.drained()
    task.cancel()
    assert playout.underruns == 1 and playout.max_gap_s > 0.1


@pytest.mark.django_db
def test_a_recording_is_stored_from_a_file_in_chunks(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    call = call_start(channel=Call.Channel.BROWSER, agent=AgentConfigFactory())
    recorder = Recorder(agent_rate=16000, max_seconds=60)
    recorder.caller.write(b"\x01\x00" * 320, 0.0)
    recorder.agent.write(b"\x02\x00" * 320, 0.02)
    with recorder.stereo_wav_file() as wav:
        call_attach_recording(call=call, wav_file=wav)
    call.refresh_from_db()
    with call.recording.open("rb") as stored:
        assert stored.read() == recorder.stereo_wav()
    recorder.close()
