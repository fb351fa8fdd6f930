"""Stage 1: transcribe the stored recording, one side at a time, with the post-call model.

The recording is stereo, caller left and agent right, so each side is transcribed on its
own and the speaker of every segment is known without diarization. Silence is cut out
before Whisper sees a side: the speech regions are joined with short gaps, transcribed in
one pass (about 3× faster than one pass per utterance, measured, since Whisper pays for a
whole 30 s window either way), and each word is mapped back to the time it was said.
"""

from __future__ import annotations

import io
import logging
import time
import wave
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from calls.models import Call, CallTranscript
from calls.postcall.errors import StageError, StageSkipped
from calls.speech.audio import ENGINE_RATE, FRAME_MS, AudioError, check_rate, frame_bytes, resample
from calls.speech.base import Transcript
from calls.speech.errors import SttError
from calls.speech.registry import get_stt

logger = logging.getLogger(__name__)

SPEAKERS_STEREO = ("caller", "agent")
# A region ends after this much non-speech; shorter pauses stay inside one utterance.
HANGOVER_MS = 500
PAD_MS = 150
MIN_SPEECH_MS = 120
GAP_S = 0.5  # silence put between regions in the joined audio


@dataclass(frozen=True)
class Region:
    start: float  # seconds in the original side
    end: float
    joined_start: float = 0.0  # seconds in the joined audio


def read_wav_channels(data: bytes) -> tuple[list[bytes], int]:
    """Each channel of a PCM WAV as mono PCM16 bytes, and the sample rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"the recording is not a readable PCM WAV file: {exc}") from exc
    if channels < 1:
        raise AudioError("the recording has no channels")
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2")
    elif width == 1:
        samples = ((np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8).astype(np.int16)
    elif width == 4:
        samples = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    else:
        raise AudioError(f"unsupported WAV sample width {width}")
    usable = samples.size - samples.size % channels
    frames = samples[:usable].reshape(-1, channels)
    return [np.ascontiguousarray(frames[:, c]).astype("<i2").tobytes() for c in range(channels)], rate


def speech_regions(pcm: bytes, rate: int = ENGINE_RATE) -> list[Region]:
    """Where someone speaks on one side: WebRTC VAD frames, with a hangover and padding."""
    import webrtcvad

    vad = webrtcvad.Vad(2)
    size = frame_bytes(rate)
    n = len(pcm) // size
    voiced = [vad.is_speech(pcm[i * size:(i + 1) * size], rate) for i in range(n)]
    regions: list[Region] = []
    start = last = None
    hang = HANGOVER_MS // FRAME_MS
    count = 0
    for i, v in enumerate(voiced):
        if v:
            if start is None:
                start, count = i, 0
            last = i
            count += 1
        elif start is not None and i - last > hang:
            if count * FRAME_MS >= MIN_SPEECH_MS:
                regions.append((start, last + 1))
            start = None
    if start is not None and count * FRAME_MS >= MIN_SPEECH_MS:
        regions.append((start, last + 1))
    total = n * FRAME_MS / 1000
    padded = []
    for a, b in regions:
        s, e = max(0.0, a * FRAME_MS / 1000 - PAD_MS / 1000), min(total, b * FRAME_MS / 1000 + PAD_MS / 1000)
        if padded and s <= padded[-1][1]:
            padded[-1] = (padded[-1][0], e)
        else:
            padded.append((s, e))
    return [Region(s, e) for s, e in padded]


def join_regions(pcm: bytes, regions: list[Region], rate: int = ENGINE_RATE) -> tuple[bytes, list[Region]]:
    """The regions' audio back to back with GAP_S of silence between, and where each landed."""
    gap = b"\x00\x00" * int(GAP_S * rate)
    parts, placed, cursor = [], [], 0.0
    for r in regions:
        chunk = pcm[int(r.start * rate) * 2:int(r.end * rate) * 2]
        placed.append(Region(r.start, r.end, cursor))
        parts += [chunk, gap]
        cursor += len(chunk) / (2 * rate) + GAP_S
    return b"".join(parts), placed


def _to_original(t: float, region: Region) -> float:
    return min(region.end, region.start + max(0.0, t - region.joined_start))


def _region_of(start: float, end: float, placed: list[Region]) -> int:
    """The region a word belongs to: the one it overlaps most, else the next one. Whisper often
    starts a word early, in the silence before it, so the midpoint alone misplaces first words."""
    best, best_overlap = None, 0.0
    for i, r in enumerate(placed):
        overlap = min(end, r.joined_start + (r.end - r.start)) - max(start, r.joined_start)
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    if best is not None:
        return best
    # Wholly inside a gap: it opens the next region more often than it closes the last.
    return next((i for i, r in enumerate(placed) if r.joined_start >= end), len(placed) - 1)


def _glued(words: list, text: str) -> list[bool]:
    """Whether each word follows the previous one without a space ("I-80", "$25,000").

    Word tokens lose their leading space, so each is looked up in the transcript's text, in
    order, to see whether a space came before it."""
    glued, pos = [], 0
    for i, w in enumerate(words):
        token = w.text
        found = text.find(token, pos) if token else -1
        if found >= 0 and found - pos <= 3:
            glued.append(i > 0 and found == pos)
            pos = found + len(token)
        else:
            glued.append(i > 0 and token[:1] in "-,.%'")
    return glued


def _move_dangling_words(by_region: dict[int, list[int]], words: list) -> None:
    """Words after a region's last full stop that open the next utterance ("…a month. It's" +
    "maria.garcia at example.com") move to it: timings at a pause are the least reliable."""
    regions = sorted(by_region)
    for here, after in zip(regions, regions[1:]):
        positions = by_region[here]
        ends = [n for n, i in enumerate(positions) if words[i].text.rstrip()[-1:] in ".?!"]
        if not ends or ends[-1] == len(positions) - 1:
            continue
        tail = positions[ends[-1] + 1:]
        if len(tail) <= 3:
            by_region[here] = positions[:ends[-1] + 1]
            by_region[after] = tail + by_region[after]


def side_segments(transcript: Transcript, placed: list[Region], speaker: str) -> list[dict]:
    """One segment per speech region, from the words that fall in it."""
    if not transcript.words and transcript.text.strip() and placed:  # an engine without word timings
        return [{"speaker": speaker, "start": round(placed[0].start, 2), "end": round(placed[-1].end, 2),
                 "text": transcript.text.strip(), "confidence": transcript.confidence}]
    glued = _glued(transcript.words, transcript.text)
    by_region: dict[int, list[int]] = {}
    for i, w in enumerate(transcript.words):
        by_region.setdefault(_region_of(w.start, w.end, placed), []).append(i)
    _move_dangling_words(by_region, transcript.words)
    segments = []
    for index in sorted(by_region):
        positions = by_region[index]
        words = [transcript.words[i] for i in positions]
        text = ""
        for n, i in enumerate(positions):
            token = transcript.words[i].text
            text += token if n == 0 or glued[i] else " " + token
        text = text.strip()
        if not text:
            continue
        region = placed[index]
        start = _to_original(words[0].start, region)
        end = _to_original(words[-1].end, region)
        segments.append({
            "speaker": speaker,
            "start": round(start, 2),
            "end": round(max(start, end), 2),
            "text": text,
            "confidence": round(sum(w.probability for w in words) / len(words), 3),
        })
    return segments


def recording_transcribe(*, call: Call) -> dict:
    """Write the call's CallTranscript from its recording (replacing an earlier one)."""
    if not call.recording:
        raise StageSkipped("the call has no recording")
    try:
        with call.recording.open("rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise StageError(f"the recording file is missing: {call.recording.name}", permanent=True) from exc
    try:
        channels, rate = read_wav_channels(data)
        check_rate(rate)
    except AudioError as exc:
        raise StageError(str(exc), permanent=True) from exc
    if len(channels) == 2:
        speakers = SPEAKERS_STEREO
    else:  # mono (or a multi-track file): one mixed side, speaker unknown
        arrays = [np.frombuffer(c, dtype="<i2").astype(np.int32) for c in channels]
        channels, speakers = [(sum(arrays) // len(arrays)).astype("<i2").tobytes()], ("mixed",)
    model_name = settings.STT_POSTCALL_MODEL
    beam = settings.POSTCALL_STT_BEAM_SIZE
    language = (call.agent.language if call.agent_id and call.agent.language else None) or settings.STT_LANGUAGE
    engine = get_stt(model_name)
    started = time.perf_counter()
    segments: list[dict] = []
    audio_seconds = 0.0
    for pcm, speaker in zip(channels, speakers):
        pcm16k = resample(pcm, rate, ENGINE_RATE)
        audio_seconds = max(audio_seconds, len(pcm16k) / (2 * ENGINE_RATE))
        regions = speech_regions(pcm16k)
        if not regions:
            continue
        joined, placed = join_regions(pcm16k, regions)
        try:
            transcript = engine.transcribe(joined, language=language, beam_size=beam, word_timestamps=True)
        except SttError as exc:
            raise StageError(f"transcription failed: {exc.message}", permanent=exc.permanent) from exc
        segments += side_segments(transcript, placed, speaker)
    segments.sort(key=lambda s: (s["start"], s["speaker"]))
    elapsed = time.perf_counter() - started
    text = "\n".join(f"{s['speaker'].capitalize()}: {s['text']}" for s in segments)
    CallTranscript.objects.update_or_create(
        call=call,
        defaults={
            "model": getattr(engine, "model", model_name) or model_name, "beam_size": beam, "language": language,
            "segments": segments, "text": text, "audio_seconds": round(audio_seconds, 3),
            "elapsed_seconds": round(elapsed, 3),
        },
    )
    logger.info("transcribed call %s: %.1f s of audio in %.1f s, %d segments", call.pk, audio_seconds, elapsed,
                len(segments))
    return {"segments": len(segments), "audio_seconds": round(audio_seconds, 2), "elapsed_seconds": round(elapsed, 2),
            "model": model_name, "beam_size": beam}
