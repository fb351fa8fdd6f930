"""Post-call pipeline: throughput with several worker processes, and turnaround from call end to analyzed.

Everything is real: PostgreSQL (a throwaway test_* database), a redis-server of its own on a free
port, `celery -A voicecrm worker -c 1` processes consuming every queue (the layout of a small
box) plus beat, Whisper base with beam 5 on both sides of stereo recordings. The calls are the
four scenario conversations of calls/tests/postcall/scenarios.py, alone and chained into longer
ones (25 s to about 4.5 min), voiced by Piper (caller left, agent right, 16 kHz) and finalized
the way a voice session does: attach the recording, then call_finalize.

1. Turnaround on an idle box: one call at a time, from the call's end (Call.ended_at) to its
   analysis finishing (AnalysisRun.finished_at). Target: p95 <= 0.25 x call length + 15 s.
2. Throughput: every call ends at once; minutes of audio analyzed per wall-clock minute, from
   the first call's end to the last analysis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voicecrm_bench .venv/bin/python bench/postcall.py \\
        [--workers 2] [--calls 20] [--turnaround-calls 10] [--stt-threads N] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def conversations() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(name, agent slug, lines): the scenarios alone, then chained into longer calls."""
    from calls.tests.postcall import scenarios as s

    single = [(sc.name, sc.agent, sc.lines) for sc in s.ALL]
    all_four = s.CHECK_IN.lines + s.EMERGENCY.lines[1:] + s.LEAD.lines[1:] + s.SUPPORT.lines[1:]
    chained = [
        ("check_in+emergency", "dispatch", s.CHECK_IN.lines + s.EMERGENCY.lines[1:]),
        ("lead+support", "leads", s.LEAD.lines + s.SUPPORT.lines[1:]),
        ("emergency+check_in+support", "dispatch", s.EMERGENCY.lines + s.CHECK_IN.lines[1:] + s.SUPPORT.lines[1:]),
        ("lead+emergency+check_in", "leads", s.LEAD.lines + s.EMERGENCY.lines[1:] + s.CHECK_IN.lines[1:]),
        ("all four", "dispatch", all_four),
        ("all four, twice", "dispatch", all_four + all_four[1:]),
    ]
    return single + chained


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.recordings: dict[str, tuple[bytes, float]] = {}

    def recording(self, name: str, lines) -> tuple[bytes, float]:
        from calls.tests.postcall.harness import recording_for

        if name not in self.recordings:
            wav, _ = recording_for(lines)
            self.recordings[name] = (wav, (len(wav) - 44) / (2 * 2 * 16000))
        return self.recordings[name]

    def end_call(self, name: str, agent_slug: str, lines):
        """A finished call with turns and its recording: what a voice session leaves behind."""
        from calls.models import Call
        from calls.services import call_attach_recording, call_finalize, call_start, turn_record
        from calls.tests.postcall.conftest import demo_agent

        wav, seconds = self.recording(name, lines)
        call = call_start(channel=Call.Channel.API, agent=demo_agent(agent_slug), from_number="+14155550142")
        for speaker, text in lines:
            turn_record(call=call, speaker=speaker, text=text)
        call_attach_recording(call=call, wav_bytes=wav)
        call_finalize(call_id=call.pk, end_reason="agent_end")
        return call.pk, seconds

    def wait(self, ids: list[int], timeout: float) -> None:
        from calls.models import Call

        deadline = time.monotonic() + timeout
        while Call.objects.filter(pk__in=ids).exclude(analysis_status__in=["done", "failed"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"calls still not analyzed after {timeout:.0f} s")
            time.sleep(0.1)

    def results(self, ids: list[int], seconds: dict[int, float]) -> list[dict]:
        from calls.models import AnalysisRun

        rows = []
        for run in AnalysisRun.objects.filter(call_id__in=ids).select_related("call").prefetch_related("stages"):
            stages = {s.name: s for s in run.stages.all()}
            rows.append({
                "call": run.call_id, "status": run.status, "audio_s": round(seconds[run.call_id], 1),
                "ended_at": run.call.ended_at.timestamp(), "finished_at": run.finished_at.timestamp(),
                "turnaround_s": round((run.finished_at - run.call.ended_at).total_seconds(), 2),
                "transcribe_s": round((stages["transcribe"].duration_ms or 0) / 1000, 2),
                "target_s": round(0.25 * seconds[run.call_id] + 15, 1),
                "fields": len(run.call.structured_data), "errors": len(run.call.extraction_errors),
            })
        return rows

    def run(self) -> dict:
        convs = conversations()
        print(f"voicing {len(convs)} conversations with Piper…", flush=True)
        for name, _, lines in convs:
            self.recording(name, lines)
        lengths = {name: round(self.recordings[name][1], 1) for name, _, _ in convs}
        print("call lengths (s): " + ", ".join(f"{n} {s}" for n, s in lengths.items()), flush=True)

        # Warm-up: each worker loads Whisper base once, as it would after a deploy.
        warm = [self.end_call(*convs[0]) for _ in range(self.args.workers)]
        self.wait([pk for pk, _ in warm], timeout=300)

        print(f"turnaround: {self.args.turnaround_calls} calls, one at a time…", flush=True)
        turnaround = []
        for i in range(self.args.turnaround_calls):
            name, slug, lines = convs[i % len(convs)]
            pk, seconds = self.end_call(name, slug, lines)
            self.wait([pk], timeout=600)
            turnaround += self.results([pk], {pk: seconds})
            time.sleep(1.0)  # idle between calls
        tt = [r["turnaround_s"] for r in turnaround]
        within = sum(r["turnaround_s"] <= r["target_s"] for r in turnaround)
        ratio = [r["turnaround_s"] / r["audio_s"] for r in turnaround]

        print(f"throughput: {self.args.calls} calls ending at once…", flush=True)
        started = time.time()
        ended = [(self.end_call(*convs[i % len(convs)])) for i in range(self.args.calls)]
        ids = [pk for pk, _ in ended]
        self.wait(ids, timeout=3600)
        batch = self.results(ids, dict(ended))
        first_end = min(r["ended_at"] for r in batch)
        last_done = max(r["finished_at"] for r in batch)
        audio_min = sum(r["audio_s"] for r in batch) / 60
        wall_min = (last_done - first_end) / 60
        summary = {
            "workers": self.args.workers, "stt_threads": self.args.stt_threads,
            "turnaround": {
                "calls": len(tt), "p50_s": statistics.median(tt), "p95_s": percentile(tt, 95), "max_s": max(tt),
                "within_target": f"{within}/{len(tt)}", "p50_per_audio_s": round(statistics.median(ratio), 3),
                "rows": turnaround,
            },
            "throughput": {
                "calls": len(batch), "audio_min": round(audio_min, 2), "wall_min": round(wall_min, 2),
                "audio_min_per_wall_min": round(audio_min / wall_min, 2),
                "failed": sum(r["status"] != "done" for r in batch),
                "enqueue_s": round(time.time() - started, 1),
            },
        }
        return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (each `celery worker -c 1`)")
    parser.add_argument("--calls", type=int, default=20, help="calls ending at once for the throughput run")
    parser.add_argument("--turnaround-calls", type=int, default=10)
    parser.add_argument("--stt-threads", type=int, default=None, help="STT_THREADS for the workers (default: setting)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="voicecrm-bench-postcall-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("SPEECH_CACHE_DIR", str(ROOT / ".cache" / "speech"))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from calls.tests.postcall.harness import CeleryProcess, RedisServer, point_app_at, process_env

    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to PostgreSQL: the workers share the database with this process")
    args.stt_threads = args.stt_threads or settings.STT_THREADS
    old = setup_databases(verbosity=0, interactive=False)
    redis = RedisServer(workdir)
    processes: list[CeleryProcess] = []
    try:
        redis.start()
        (workdir / "faults").mkdir()
        env = process_env(redis_url=redis.url, fault_dir=workdir / "faults", POSTCALL_SWEEP_SECONDS="10",
                          STT_THREADS=str(args.stt_threads), SPEECH_WORKERS="1", LOG_LEVEL="WARNING")
        for n in range(args.workers):
            processes.append(CeleryProcess(
                f"worker{n}", ["worker", "-Q", "default,stt,tts,postcall", "-c", "1", "-n", f"bench{n}-{redis.port}@%h",
                               "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
                env, workdir, "ready."))
        processes.append(CeleryProcess("beat", ["beat", "-s", str(workdir / "beat"), "--loglevel", "INFO"], env, workdir,
                                       "beat: Starting"))
        for proc in processes:
            proc.start()
        point_app_at(redis.url)
        summary = Bench(args).run()
    finally:
        for proc in processes:
            proc.stop()
        redis.stop()
        teardown_databases(old, verbosity=0)

    t, tp = summary["turnaround"], summary["throughput"]
    print()
    for row in t["rows"]:
        print(f"  call of {row['audio_s']:6.1f} s: analyzed {row['turnaround_s']:5.1f} s after it ended "
              f"(transcription {row['transcribe_s']:.1f} s; target {row['target_s']:.1f} s)")
    print(f"turnaround, {t['calls']} calls one at a time: p50 {t['p50_s']:.1f} s, p95 {t['p95_s']:.1f} s, "
          f"max {t['max_s']:.1f} s; {t['within_target']} within 0.25 x length + 15 s; "
          f"p50 {t['p50_per_audio_s']:.2f} s per second of audio")
    print(f"throughput, {tp['calls']} calls at once, {args.workers} worker processes (STT_THREADS={args.stt_threads}): "
          f"{tp['audio_min']:.1f} min of audio in {tp['wall_min']:.2f} min = {tp['audio_min_per_wall_min']:.2f} "
          f"audio min per wall min; failed: {tp['failed']}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
