"""Real processes for the reliability tests: a private redis-server, a Celery worker and beat.

The worker and beat are `celery -A voicecrm …` subprocesses pointed at the test database (by
its test_ name) and at a redis-server of their own on a free port, so a test may stop Redis
without touching the shared one, and no stray message from another run reaches the worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / f"redis-{self.port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class CeleryProcess:
    """`celery -A <app> <command>` (the product's app unless told otherwise); ready when its log says so."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path, ready_marker: str,
                 app: str = "voicecrm") -> None:
        self.name, self.args, self.env, self.workdir, self.ready_marker = name, args, env, workdir, ready_marker
        self.app = app
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self._log_fh = open(self.log, "ab")
        offset = self.log.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", self.app, *self.args], cwd=ROOT, env=self.env,
            stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            return self.ready_marker in self.log.read_text(errors="replace")[offset:]

        wait_for(ready, timeout=timeout, what=f"{self.name} to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: the main process and its pool children
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if getattr(self, "_log_fh", None):
            self._log_fh.close()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def database_url() -> str:
    """The test database (pytest-django's test_<name>) as a URL a subprocess can use."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] != "django.db.backends.postgresql":
        # Only with DATABASE_URL naming another engine: unset, the run starts its own PostgreSQL.
        raise RuntimeError("the worker tests need PostgreSQL: point DATABASE_URL at one, or unset it")
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(*, redis_url: str, fault_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update({
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "VOICECRM_FAULT_DIR": str(fault_dir),
        "POSTCALL_SWEEP_SECONDS": "1",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def point_app_at(url: str) -> None:
    """Make this process publish to `url` (the private Redis) from now on.

    Only the app lets go of its pools; they stay open. kombu keeps one connection pool and one
    producer pool per broker URL for the whole process, so closing the one left behind would
    break every later publish to that URL, the broker this is pointed back at included."""
    from voicecrm.celery import app

    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app.conf.broker_url = url
    app.conf.broker_write_url = None
    app.conf.task_always_eager = False


def recording_for(lines: list[tuple[str, str]], *, rate: int = 16000) -> tuple[bytes, list[tuple[int, int]]]:
    """A stereo WAV of the lines voiced by Piper, caller left and agent right, and each line's (start, end) ms.

    Piper's sampling noise is off, so a line sounds the same on every run and the tests do not
    depend on the luck of one rendering; the caller speaks a little slower than the agent."""
    import numpy as np
    from piper import SynthesisConfig

    from calls.speech.audio import interleave_stereo, resample, wav_bytes
    from calls.speech.tts import load_voice, voice_path

    voice = load_voice(voice_path("joe"))
    native = int(voice.config.sample_rate)
    caller, agent, spans = [], [], []
    gap = int(0.35 * rate)
    cursor = int(0.5 * rate)
    for speaker, text in lines:
        config = SynthesisConfig(length_scale=1.05 if speaker == "caller" else 0.95, noise_scale=0.0,
                                 noise_w_scale=0.0, volume=0.9)
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, syn_config=config))
        speech = np.frombuffer(resample(pcm, native, rate), dtype="<i2")
        spans.append((cursor * 1000 // rate, (cursor + speech.size) * 1000 // rate))
        (caller if speaker == "caller" else agent).append((cursor, speech))
        cursor += speech.size + gap
    left, right = np.zeros(cursor + rate // 2, dtype=np.int16), np.zeros(cursor + rate // 2, dtype=np.int16)
    for track, out in ((caller, left), (agent, right)):
        for start, speech in track:
            out[start:start + speech.size] = speech
    return wav_bytes(interleave_stereo(left.tobytes(), right.tobytes()), rate, channels=2), spans
