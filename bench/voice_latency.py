"""Voice-to-voice latency of live calls: N concurrent simulated calls through the real session.

Every call is a `VoiceSession` (WebRTC VAD + endpointer, Whisper, the configured dialog
engine, Piper) on an in-memory transport, all in this one process and on one event loop,
as a daphne worker would run them. The caller side streams real telephone recordings
(the Asterisk core prompts: 8 kHz, upsampled to 16 kHz) in real time, 20 ms per frame,
with silence between turns, and waits for the agent to finish before the next prompt.

Voice-to-voice is measured from outside the session: from the moment the frame holding
the last sample of caller speech is fed in, to the moment the first agent frame after it
is handed to the transport. Stage times come from the Turn rows the session stores.

    DATABASE_URL=postgres://... .venv/bin/python bench/voice_latency.py --calls 4 [--turns 10]
        [--rate 8000] [--agent SLUG] [--seed 1] [--json OUT.json]

The database must be migrated (`manage.py migrate`). Without --agent a throwaway
customer-service agent is created (300 ms endpointing) and
deleted afterwards with its calls. The post-call pipeline is kept out of the measurement
(its tasks go to an in-memory broker), as it runs on separate workers in production.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def cpu_times() -> tuple[float, float]:
    """(this process's CPU seconds, whole machine's busy CPU seconds) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return usage.ru_utime + usage.ru_stime, busy / ticks


def load_prompts(endpointing_ms: int, *, max_seconds: float = 4.5) -> list[tuple[str, bytes, str]]:
    """Short one-utterance prompts: 3+ words, no digits, and one turn to the endpointer at the
    agent's silence setting (a prompt with a long internal pause would be two turns)."""
    from calls.speech.audio import iter_frames, read_wav
    from calls.speech.vad import Endpointer, WebRtcVad

    prompts = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            name, text = name.strip(), text.strip()
            if not sep or name.startswith(";") or not text or "/" in name:
                continue
            if re.search(r"[0-9\[\]*#@%&()]", text) or len(text.split()) < 3:
                continue
            wav = SOUNDS / f"{name}.wav"
            if not wav.is_file():
                continue
            pcm = read_wav(wav)
            if len(pcm) / 32000 > max_seconds:
                continue
            endpointer = Endpointer(WebRtcVad(), silence_ms=endpointing_ms)
            events = [e for f in iter_frames(pcm + bytes(32000)) for e in endpointer.process(f)]
            if [e.kind for e in events if e.kind in ("speech_end", "discard")] == ["speech_end"]:
                prompts.append((name, pcm, text))
    return prompts


async def one_call(index: int, args, agent, prompts, results: dict, start_delay: float) -> None:
    from calls.session import MemoryTransport, VoiceSession
    from calls.session.simulate import SimulatedCaller, first_frame_after, wait_until_listening

    await asyncio.sleep(start_delay)
    rng = random.Random(args.seed * 1000 + index)
    turns_left = args.turns
    while turns_left > 0:
        transport = MemoryTransport(args.rate)
        session = VoiceSession(agent=agent, transport=transport, channel="api",
                               caller_number=f"+1555010{index:04d}")
        caller = SimulatedCaller(session, noise_dbfs=args.noise_dbfs, seed=index)
        run = asyncio.create_task(session.run())
        feed = asyncio.create_task(caller.run())

        try:
            if not await wait_until_listening(transport, timeout=60, run=run):
                continue
            while turns_left > 0 and not run.done():
                await asyncio.sleep(rng.uniform(0.6, 1.2))  # the caller thinks, then answers
                name, pcm, _ = rng.choice(prompts)
                last_sample_at = await caller.say(pcm)
                turns_left -= 1
                finished = await wait_until_listening(transport, after=last_sample_at, timeout=60, run=run)
                first = first_frame_after(transport, last_sample_at)
                if first is not None:
                    results["v2v"].append((first - last_sample_at) * 1000)
                    results["prompts"].append(name)
                if not finished:
                    break
        except TimeoutError:
            results["timeouts"] += 1
        finally:
            if not run.done():
                caller.hang_up()
            summary = await run
            caller.stop()
            await feed
            results["sessions"].append(summary)
            results["late_frames"] += caller.late_frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1, help="concurrent calls")
    parser.add_argument("--turns", type=int, default=10, help="caller turns per concurrent call")
    parser.add_argument("--rate", type=int, default=8000, help="transport sample rate (8000 = telephone)")
    parser.add_argument("--agent", help="slug of an existing agent (default: a throwaway one)")
    parser.add_argument("--endpointing-ms", type=int, default=300, help="for the throwaway agent")
    parser.add_argument("--noise-dbfs", type=float, default=None, help="line noise between turns, e.g. -60")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every turn")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    logging.getLogger("calls.speech").setLevel(logging.WARNING)
    from django.conf import settings

    from agents.models import AgentConfig
    from calls.models import Call, Turn
    from calls.session import session_warm_up
    from voicecrm.celery import app

    if not TRANSCRIPTS.is_file():
        print(f"missing {TRANSCRIPTS}: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav")
        return 2
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"

    throwaway = args.agent is None
    if throwaway:
        agent = AgentConfig.objects.create(
            name="Voice latency benchmark", slug=f"voice-latency-bench-{os.getpid()}",
            greeting="Thanks for calling. How can I help?", closing="Goodbye.",
            endpointing_silence_ms=args.endpointing_ms, silence_reprompt_seconds=30, silence_hangup_seconds=60,
        )
    else:
        agent = AgentConfig.objects.get(slug=args.agent)
    started_at = time.time()
    try:
        prompts = load_prompts(agent.endpointing_silence_ms)
        print(f"{len(prompts)} one-utterance Asterisk prompts; warming up…", flush=True)
        session_warm_up(agents=[agent], sample_rates=[args.rate])

        results = {"v2v": [], "prompts": [], "sessions": [], "timeouts": 0, "late_frames": 0}
        load_before = os.getloadavg()
        cpu0, busy0 = cpu_times()
        wall0 = time.monotonic()

        async def all_calls():
            stagger = 2.0 / max(1, args.calls)
            await asyncio.gather(*(one_call(i, args, agent, prompts, results, i * stagger) for i in range(args.calls)))

        asyncio.run(all_calls())
        wall = time.monotonic() - wall0
        cpu1, busy1 = cpu_times()
        load_after = os.getloadavg()
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        call_ids = [s.call_id for s in results["sessions"] if s.call_id]
        caller_turns = Turn.objects.filter(call_id__in=call_ids, speaker="caller")
        agent_turns = Turn.objects.filter(call_id__in=call_ids, speaker="agent").exclude(voice_to_voice_ms=None)
        stats = [s.stats for s in results["sessions"]]
        if args.verbose:
            for turn in Turn.objects.filter(call_id__in=call_ids).order_by("call_id", "index"):
                timings = [f"{k}={getattr(turn, k)}" for k in ("endpointing_ms", "stt_ms", "agent_ms",
                           "tts_first_audio_ms", "voice_to_voice_ms") if getattr(turn, k) is not None]
                print(f"  call {turn.call_id} #{turn.index} {turn.speaker:6} {' '.join(timings):60} {turn.text[:70]}")
        ncpu = os.cpu_count() or 1
        v2v = results["v2v"]
        figures = {
            "calls": args.calls, "turns": len(v2v), "sessions": len(results["sessions"]),
            "transport_rate": args.rate, "endpointing_ms": agent.endpointing_silence_ms,
            "stt_model": agent.stt_model, "stt_threads": settings.STT_THREADS,
            "speech_workers": settings.SPEECH_WORKERS, "dialog_engine": settings.DIALOG_ENGINE,
            "v2v_p50_ms": round(percentile(v2v, 50)), "v2v_p95_ms": round(percentile(v2v, 95)),
            "v2v_max_ms": round(max(v2v)) if v2v else None,
            "stage_median_ms": {
                "endpointing": median(list(caller_turns.values_list("endpointing_ms", flat=True))),
                "stt_wait": median(list(caller_turns.values_list("stt_ms", flat=True))),
                "agent": median(list(agent_turns.values_list("agent_ms", flat=True))),
                "tts_first_audio": median(list(agent_turns.values_list("tts_first_audio_ms", flat=True))),
                "session_v2v": median(list(agent_turns.values_list("voice_to_voice_ms", flat=True))),
            },
            "underruns": sum(s.underruns for s in stats),
            "max_gap_ms": max((s.max_gap_ms for s in stats), default=0),
            "fillers": sum(s.fillers for s in stats),
            "barge_ins": sum(s.barge_ins for s in stats),
            "speculative": {k: sum(getattr(s, f"speculative_{k}") for s in stats) for k in ("started", "used", "discarded")},
            "timeouts": results["timeouts"], "late_caller_frames": results["late_frames"],
            "cpu_process_pct_of_machine": round(100 * (cpu1 - cpu0) / wall / ncpu, 1),
            "cpu_others_pct_of_machine": round(100 * max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / wall / ncpu, 1),
            "peak_rss_mb": round(peak_rss_mb), "loadavg_before": load_before, "loadavg_after": load_after,
            "wall_s": round(wall, 1),
        }
    finally:
        if throwaway:
            Call.objects.filter(agent=agent).delete()
            agent.delete()
        else:
            Call.objects.filter(agent=agent, channel="api", started_at__gte=_aware(started_at)).delete()

    f = figures
    print(f"calls {f['calls']} concurrent, {f['turns']} turns in {f['sessions']} sessions, {f['wall_s']} s; "
          f"transport {f['transport_rate']} Hz; endpointing {f['endpointing_ms']} ms; "
          f"STT {f['stt_model']} ({f['stt_threads']} threads, {f['speech_workers']} speech workers)")
    print(f"voice-to-voice   p50 {f['v2v_p50_ms']} ms   p95 {f['v2v_p95_ms']} ms   max {f['v2v_max_ms']} ms")
    sm = f["stage_median_ms"]
    print("stage medians    " + "   ".join(f"{k} {v:.0f}" for k, v in sm.items()) + "  (ms)")
    print(f"underruns        {f['underruns']} (max gap {f['max_gap_ms']} ms)   fillers {f['fillers']}   "
          f"barge-ins {f['barge_ins']}   timeouts {f['timeouts']}   late caller frames {f['late_caller_frames']}")
    sp = f["speculative"]
    print(f"speculative STT  started {sp['started']}  used {sp['used']}  discarded {sp['discarded']}")
    print(f"CPU              this process {f['cpu_process_pct_of_machine']} %, others {f['cpu_others_pct_of_machine']} % "
          f"of {os.cpu_count()} cores; load {f['loadavg_before'][0]:.2f} -> {f['loadavg_after'][0]:.2f}")
    print(f"peak RSS         {f['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=2, default=str))
    return 0


def _aware(ts: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


if __name__ == "__main__":
    sys.exit(main())
