"""Voice activity detection and endpointing.

A `Vad` scores one 20 ms PCM16 frame. VAD objects hold per-stream state (noise
estimates, recurrent state), so each call gets its own instance; heavy resources
(the Silero ONNX session) are shared per process.

`Endpointer` is a pure state machine over per-frame speech decisions: it turns them
into speech_start / pause / resume / speech_end / discard events, which is all a voice
session needs to run turns and barge-in.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from .audio import FRAME_MS, AudioError, Resampler, frame_bytes, pcm16_to_float32
from .base import Vad


class NoiseFloor:
    """Tracks the line's background level and says whether a frame stands out from it.

    The floor is a low percentile of the last `window_ms` of frame energies (minimum
    statistics: even continuous speech has quiet frames, noise has nothing else). WebRTC's
    VAD fires for ~80 ms at the onset of steady hiss, before it adapts; requiring frames
    that *start* an utterance to stand `margin_db` above the floor removes those false
    starts (and false barge-ins) without a calibration period. Only starts are gated:
    weak phonemes sit close to the floor, and gating them would chop utterances.
    """

    def __init__(self, *, margin_db: float = 6.0, window_ms: int = 3000, percentile: float = 10.0) -> None:
        self.margin_db = margin_db
        self.percentile = percentile
        self._levels: deque[float] = deque(maxlen=max(1, window_ms // FRAME_MS))

    def reset(self) -> None:
        self._levels.clear()

    def stands_out(self, frame: bytes) -> bool:
        x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        level = 10 * np.log10(np.mean(x * x) + 1.0)  # +1: digital silence is 0 dB, not -inf
        self._levels.append(level)
        floor = float(np.percentile(self._levels, self.percentile))
        return level >= floor + self.margin_db


def _check_frame(frame: bytes, rate: int, rates: tuple[int, ...]) -> None:
    if rate not in rates:
        raise AudioError(f"VAD supports {rates} Hz, got {rate!r}")
    if not isinstance(frame, (bytes, bytearray, memoryview)) or len(frame) != frame_bytes(rate):
        size = len(frame) if isinstance(frame, (bytes, bytearray, memoryview)) else type(frame).__name__
        raise AudioError(f"VAD expects one {FRAME_MS} ms PCM16 frame ({frame_bytes(rate)} bytes), got {size}")


class WebRtcVad(Vad):
    """Google's WebRTC GMM VAD: ~20 µs a frame, no model. Aggressiveness 0 (lenient) to 3 (strict).

    Its answer is binary, so `speech_probability` is 0.0 or 1.0.
    """

    name = "webrtc"
    RATES = (8000, 16000, 32000, 48000)

    def __init__(self, aggressiveness: int = 3) -> None:
        import webrtcvad

        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0..3, got {aggressiveness!r}")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)

    def speech_probability(self, frame: bytes, rate: int) -> float:
        _check_frame(frame, rate, self.RATES)
        return 1.0 if self._vad.is_speech(bytes(frame), rate) else 0.0

    def reset(self) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(self.aggressiveness)


@lru_cache(maxsize=1)
def _silero_session():  # -> onnxruntime.InferenceSession
    import faster_whisper
    import onnxruntime

    assets = Path(faster_whisper.__file__).parent / "assets"
    models = sorted(assets.glob("silero_*.onnx"))
    if not models:
        raise RuntimeError(f"no Silero VAD model in {assets}")
    opts = onnxruntime.SessionOptions()
    # One thread: a 32 ms window costs ~0.1 ms; more threads only add contention with Whisper.
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(str(models[-1]), sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVad(Vad):
    """Silero VAD (the ONNX model bundled with faster-whisper), run with onnxruntime.

    The model scores 512-sample windows at 16 kHz with 64 samples of context and carries
    an LSTM state; 8 kHz input is upsampled first. A 20 ms frame gets the probability of
    the latest complete window, so decisions lag by at most one 32 ms window.
    """

    name = "silero"
    RATES = (8000, 16000)
    WINDOW = 512
    CONTEXT = 64

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._session = _silero_session()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._upsampler: Resampler | None = None
        self._prob = 0.0

    def speech_probability(self, frame: bytes, rate: int) -> float:
        _check_frame(frame, rate, self.RATES)
        with self._lock:
            if rate == 8000:
                self._upsampler = self._upsampler or Resampler(8000, 16000)
                frame = self._upsampler.process(frame)
            self._pending = np.concatenate([self._pending, pcm16_to_float32(frame)])
            while self._pending.size >= self.WINDOW:
                window, self._pending = self._pending[: self.WINDOW], self._pending[self.WINDOW :]
                x = np.concatenate([self._context, window])[None, :]
                out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
                self._context = window[-self.CONTEXT :]
                self._prob = float(np.asarray(out).reshape(-1)[-1])
            return self._prob


# --- Endpointing ------------------------------------------------------------------------------

EventKind = Literal["speech_start", "pause", "resume", "speech_end", "discard"]


@dataclass(frozen=True)
class EndpointEvent:
    """What the endpointer noticed at stream time `at_ms`.

    speech_start: enough voiced audio; a caller may barge in. `start_ms` = first voiced frame.
    pause: silence began after speech; `audio` is the utterance so far, so STT can start
        speculatively. If no `resume` follows, `speech_end` carries exactly the same audio.
    resume: speech came back after a pause; discard the speculative transcript.
    speech_end: the utterance is over (`silence_ms` of silence, or `truncated` at max length).
        `audio` = pre-roll + speech + `pause_ms` of trailing audio.
    discard: the "utterance" was shorter than `min_utterance_ms` (a cough, a click).
    """

    kind: EventKind
    at_ms: int
    start_ms: int | None = None
    end_ms: int | None = None
    audio: bytes = b""
    truncated: bool = False


class Endpointer:
    """Frame in, events out. Feed every 20 ms frame of one stream, in order.

    `process(frame)` asks the VAD; `process(frame, speech=True/False)` takes a decision made
    elsewhere (tests, a shared VAD). Frames of the wrong size are dropped and counted in
    `dropped_frames`; they still advance nothing, so the timeline stays in real frames.
    """

    def __init__(
        self,
        vad: Vad | None = None,
        *,
        rate: int = 16000,
        start_ms: int = 80,
        start_window_ms: int = 200,
        silence_ms: int = 300,
        pause_ms: int = 100,
        resume_ms: int = 60,
        min_utterance_ms: int = 160,
        preroll_ms: int = 200,
        max_utterance_ms: int = 30_000,
        start_gate_db: float | None = 6.0,
    ) -> None:
        f = FRAME_MS
        self.vad = vad
        self.noise_floor = NoiseFloor(margin_db=start_gate_db) if start_gate_db is not None else None
        self.rate = rate
        self.frame_size = frame_bytes(rate)
        self.start_frames = max(1, start_ms // f)
        self.start_window = max(self.start_frames, start_window_ms // f)
        self.silence_frames = max(1, silence_ms // f)
        # The pause event fires once this much silence has passed. 20 ms would be "the moment
        # silence begins", but short gaps between words then trigger a wasted speculative STT
        # (~0.3 s of a core each); 100 ms still gives STT a 200 ms head start on the endpoint.
        self.pause_frames = min(max(1, pause_ms // f), self.silence_frames)
        # While in trailing silence, isolated voiced frames (line noise, clicks) don't count:
        # speech resumes only with this many voiced frames among the last `resume_window`.
        self.resume_frames = max(1, resume_ms // f)
        self.resume_window = self.resume_frames + 2
        self.min_utterance_frames = max(1, min_utterance_ms // f)
        self.preroll_frames = preroll_ms // f
        self.max_utterance_frames = max(self.start_window, max_utterance_ms // f)
        self.dropped_frames = 0
        self.frames_seen = 0
        self.reset()

    def reset(self) -> None:
        """Drop the utterance in progress (e.g. the agent took the turn). The VAD and the noise
        floor keep what they learned about the line: they belong to the call, not the turn."""
        self.in_speech = False
        self._history: deque[tuple[bytes, bool]] = deque(maxlen=self.preroll_frames + self.start_window)
        self._utterance: list[bytes] = []
        self._speech_start = 0  # frame index of the first voiced frame
        self._last_voiced = 0  # frame index of the latest voiced frame
        self._silence_run = 0
        self._recent: deque[bool] = deque(maxlen=self.resume_window)
        self._paused = False

    def _ms(self, frames: int) -> int:
        return frames * FRAME_MS

    def process(self, frame: bytes, speech: bool | None = None) -> list[EndpointEvent]:
        if not isinstance(frame, (bytes, bytearray, memoryview)) or len(frame) != self.frame_size:
            self.dropped_frames += 1
            return []
        frame = bytes(frame)
        if speech is None:
            if self.vad is None:
                raise ValueError("Endpointer.process() needs a speech decision or a VAD")
            try:
                speech = self.vad.is_speech(frame, self.rate)
            except AudioError:
                self.dropped_frames += 1
                return []
        index = self.frames_seen
        self.frames_seen += 1
        stands_out = self.noise_floor.stands_out(frame) if self.noise_floor is not None else True
        if not self.in_speech:
            speech = speech and stands_out
        return self._in_speech(frame, speech, index) if self.in_speech else self._idle(frame, speech, index)

    def _idle(self, frame: bytes, speech: bool, index: int) -> list[EndpointEvent]:
        self._history.append((frame, speech))
        window = list(self._history)[-self.start_window :]
        if sum(v for _, v in window) < self.start_frames:
            return []
        # Speech starts at the first voiced frame of the window; keep pre-roll before it
        # so the first consonant (often unvoiced, so not "speech" to the VAD) isn't cut.
        first = next(i for i, (_, v) in enumerate(window) if v)
        history = list(self._history)
        first_in_history = len(history) - len(window) + first
        keep_from = max(0, first_in_history - self.preroll_frames)
        self._utterance = [f for f, _ in history[keep_from:]]
        self._speech_start = index - (len(history) - 1 - first_in_history)
        self._last_voiced = index
        self._silence_run = 0
        self._recent.clear()
        self._paused = False
        self.in_speech = True
        self._history.clear()
        return [EndpointEvent("speech_start", at_ms=self._ms(index + 1), start_ms=self._ms(self._speech_start))]

    def _utterance_audio(self) -> bytes:
        # Everything up to the last voiced frame plus pause_ms, so pause and end agree exactly.
        keep = len(self._utterance) - self._silence_run + min(self._silence_run, self.pause_frames)
        return b"".join(self._utterance[:keep])

    def _in_speech(self, frame: bytes, speech: bool, index: int) -> list[EndpointEvent]:
        self._utterance.append(frame)
        self._recent.append(speech)
        events: list[EndpointEvent] = []
        voiced = speech and (self._silence_run == 0 or sum(self._recent) >= self.resume_frames)
        if voiced:
            if self._paused:
                events.append(EndpointEvent("resume", at_ms=self._ms(index + 1), start_ms=self._ms(self._speech_start)))
                self._paused = False
            self._silence_run = 0
            self._last_voiced = index
        else:
            self._silence_run += 1
            if self._silence_run == self.pause_frames and self._long_enough():
                self._paused = True
                events.append(self._event("pause", index))
        if self._silence_run >= self.silence_frames:
            events.append(self._finish(index, truncated=False))
        elif len(self._utterance) >= self.max_utterance_frames:
            events.append(self._finish(index, truncated=True))
        return events

    def _long_enough(self) -> bool:
        return self._last_voiced - self._speech_start + 1 >= self.min_utterance_frames

    def _event(self, kind: EventKind, index: int, truncated: bool = False) -> EndpointEvent:
        return EndpointEvent(
            kind,
            at_ms=self._ms(index + 1),
            start_ms=self._ms(self._speech_start),
            end_ms=self._ms(self._last_voiced + 1),
            audio=self._utterance_audio(),
            truncated=truncated,
        )

    def _finish(self, index: int, *, truncated: bool) -> EndpointEvent:
        if truncated:
            self._silence_run = 0  # a forced cut keeps everything
        event = (
            self._event("speech_end", index, truncated)
            if self._long_enough() or truncated
            else EndpointEvent("discard", at_ms=self._ms(index + 1), start_ms=self._ms(self._speech_start))
        )
        self.in_speech = False
        self._utterance = []
        self._history.clear()
        self._paused = False
        return event

    def flush(self) -> list[EndpointEvent]:
        """End of stream (hang-up): close an utterance in progress as if silence followed."""
        if not self.in_speech:
            return []
        return [self._finish(self.frames_seen - 1, truncated=False)]
