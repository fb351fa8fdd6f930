"""Voice-to-voice latency over Asterisk AudioSocket: N concurrent calls through the real server.

Every call is a TCP connection to an in-process `AudioSocketServer` (the one `manage.py
run_audiosocket` runs), from a fake Asterisk that sends the call's UUID and then a 20 ms slin
frame every 20 ms in real time: silence, or a real telephone recording (the Asterisk core
prompts, 8 kHz, as 0x10 frames). Each call is prepared as FastAGI prepares one (a Call row
not yet answered), and the server runs the real voice session on it: VAD, endpointing,
Whisper, the configured dialog engine, Piper.

Latency is timed at the socket, as Asterisk sees it: from writing the frame that holds the last
sample of caller speech to reading the first frame with sound in it (peak |sample| >= 500). The
caller waits for the reply to end (1.2 s of silence) before its next prompt. Also reported: the
longest gap between two frames read (Asterisk hangs up at 2 s) and underruns (silence the
server wrote inside a reply because no agent audio was ready).

    DATABASE_URL=postgres://... .venv/bin/python bench/audiosocket_latency.py --calls 4 [--turns 10]
        [--rate 8000] [--agent SLUG] [--seed 1] [--json OUT.json] [-v]

The database must be migrated. Without --agent a throwaway agent (300 ms endpointing) is created
and deleted afterwards with its calls. The post-call pipeline is kept out of the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.voice_latency import SOUNDS, TRANSCRIPTS, _aware, cpu_times, load_prompts, median, percentile  # noqa: E402

REPLY_TIMEOUT_S = 30.0
REPLY_END_QUIET_S = 1.2


async def one_call(index: int, args, agent, prompts, server, results: dict, start_delay: float) -> None:
    from calls.models import Call
    from calls.services import call_start
    from telephony.asterisk.tests.fake_asterisk import FakeAsterisk

    await asyncio.sleep(start_delay)
    rng = random.Random(args.seed * 1000 + index)
    turns_left = args.turns
    while turns_left > 0:
        call = await asyncio.to_thread(
            call_start, channel=Call.Channel.ASTERISK, agent=agent, from_number=f"+1555010{index:04d}",
            to_number="7000", provider_call_id=f"bench-{os.getpid()}-{index}-{turns_left}", answered=False)
        line = FakeAsterisk(server.port, call.public_id, rate=args.rate)
        known = set(server.connections)
        await line.connect()
        try:
            greeted = await line.until_audible(timeout=REPLY_TIMEOUT_S)
            await asyncio.sleep(0.05)
            results["lines"].extend(c.line for c in server.connections - known)
            await line.until_quiet(after=greeted, quiet_s=REPLY_END_QUIET_S, timeout=60)
            while turns_left > 0 and line.closed_at is None:
                await asyncio.sleep(rng.uniform(0.6, 1.2))  # the caller thinks, then answers
                name, pcm = rng.choice(prompts)
                last_sample_at = await line.say(pcm)
                turns_left -= 1
                first = await line.until_audible(after=last_sample_at, timeout=REPLY_TIMEOUT_S)
                results["v2v"].append((first - last_sample_at) * 1000)
                results["prompts"].append(name)
                if args.verbose:
                    print(f"  call {index} {name:28} {(first - last_sample_at) * 1000:5.0f} ms", flush=True)
                await line.until_quiet(after=first, quiet_s=REPLY_END_QUIET_S, timeout=60)
        except (TimeoutError, AssertionError) as error:
            results["timeouts"] += 1
            if args.verbose:
                print(f"  call {index}: {error!r}", flush=True)
        finally:
            if line.closed_at is None:
                await line.hang_up()
            await line.until_closed(timeout=60)
            await line.close()
            results["fakes"].append(line)
            results["call_ids"].append(call.pk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1, help="concurrent calls")
    parser.add_argument("--turns", type=int, default=10, help="caller turns per concurrent call")
    parser.add_argument("--rate", type=int, default=8000, choices=(8000, 16000), help="0x10 slin (8000) or 0x12 (16000)")
    parser.add_argument("--agent", help="slug of an existing agent (default: a throwaway one)")
    parser.add_argument("--endpointing-ms", type=int, default=300, help="for the throwaway agent")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every turn")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    logging.getLogger("calls.speech").setLevel(logging.WARNING)
    logging.getLogger("telephony.asterisk.server").setLevel(logging.WARNING)
    from django.conf import settings

    from agents.models import AgentConfig
    from calls.models import Call, Turn
    from calls.session import session_warm_up
    from calls.speech.audio import read_wav
    from telephony.asterisk.server import AudioSocketServer
    from voicecrm.celery import app

    if not TRANSCRIPTS.is_file():
        print(f"missing {TRANSCRIPTS}: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav")
        return 2
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"

    throwaway = args.agent is None
    if throwaway:
        agent = AgentConfig.objects.create(
            name="AudioSocket latency benchmark", slug=f"audiosocket-latency-bench-{os.getpid()}",
            greeting="Thanks for calling. How can I help?", closing="Goodbye.",
            endpointing_silence_ms=args.endpointing_ms, silence_reprompt_seconds=30, silence_hangup_seconds=60,
        )
    else:
        agent = AgentConfig.objects.get(slug=args.agent)
    started_at = time.time()
    try:
        prompts = [(name, read_wav(SOUNDS / f"{name}.wav", rate=args.rate))
                   for name, _, _ in load_prompts(agent.endpointing_silence_ms)]
        print(f"{len(prompts)} one-utterance Asterisk prompts; warming up…", flush=True)
        session_warm_up(agents=[agent], sample_rates=[args.rate])

        results = {"v2v": [], "prompts": [], "fakes": [], "lines": [], "call_ids": [], "timeouts": 0}
        load_before = os.getloadavg()
        cpu0, busy0 = cpu_times()
        wall0 = time.monotonic()

        async def all_calls():
            server = AudioSocketServer(host="127.0.0.1", port=0)
            await server.start()
            try:
                stagger = 2.0 / max(1, args.calls)
                await asyncio.gather(*(one_call(i, args, agent, prompts, server, results, i * stagger)
                                       for i in range(args.calls)))
            finally:
                await server.close(timeout=60)

        asyncio.run(all_calls())
        wall = time.monotonic() - wall0
        cpu1, busy1 = cpu_times()
        load_after = os.getloadavg()
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        call_ids = results["call_ids"]
        caller_turns = Turn.objects.filter(call_id__in=call_ids, speaker="caller")
        agent_turns = Turn.objects.filter(call_id__in=call_ids, speaker="agent").exclude(voice_to_voice_ms=None)
        fakes, lines = results["fakes"], results["lines"]
        ncpu = os.cpu_count() or 1
        v2v = results["v2v"]
        figures = {
            "calls": args.calls, "turns": len(v2v), "sessions": len(fakes), "line_rate": args.rate,
            "endpointing_ms": agent.endpointing_silence_ms, "stt_model": agent.stt_model,
            "stt_threads": settings.STT_THREADS, "speech_workers": settings.SPEECH_WORKERS,
            "dialog_engine": settings.DIALOG_ENGINE,
            "v2v_p50_ms": round(percentile(v2v, 50)), "v2v_p95_ms": round(percentile(v2v, 95)),
            "v2v_max_ms": round(max(v2v)) if v2v else None,
            "stage_median_ms": {
                "endpointing": median(list(caller_turns.values_list("endpointing_ms", flat=True))),
                "stt_wait": median(list(caller_turns.values_list("stt_ms", flat=True))),
                "agent": median(list(agent_turns.values_list("agent_ms", flat=True))),
                "tts_first_audio": median(list(agent_turns.values_list("tts_first_audio_ms", flat=True))),
                "session_v2v": median(list(agent_turns.values_list("voice_to_voice_ms", flat=True))),
            },
            "max_gap_received_ms": round(max((f.max_gap_s for f in fakes), default=0) * 1000),
            "line_errors": sum(len(f.errors) for f in fakes),
            "underruns": sum(line.underruns for line in lines),
            "late_restarts": sum(line.late_restarts for line in lines),
            "frames_received": sum(len(f.received) for f in fakes),
            "timeouts": results["timeouts"],
            "cpu_process_pct_of_machine": round(100 * (cpu1 - cpu0) / wall / ncpu, 1),
            "cpu_others_pct_of_machine": round(100 * max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / wall / ncpu, 1),
            "peak_rss_mb": round(peak_rss_mb), "loadavg_before": load_before, "loadavg_after": load_after,
            "wall_s": round(wall, 1),
            "per_turn_ms": [[name, round(ms)] for name, ms in zip(results["prompts"], v2v)],
        }
    finally:
        if throwaway:
            Call.objects.filter(agent=agent).delete()
            agent.delete()
        else:
            Call.objects.filter(agent=agent, channel="asterisk", provider_call_id__startswith=f"bench-{os.getpid()}-",
                                started_at__gte=_aware(started_at)).delete()

    f = figures
    print(f"calls {f['calls']} concurrent, {f['turns']} turns in {f['sessions']} sessions, {f['wall_s']} s; "
          f"AudioSocket slin {f['line_rate']} Hz; endpointing {f['endpointing_ms']} ms; "
          f"STT {f['stt_model']} ({f['stt_threads']} threads, {f['speech_workers']} speech workers)")
    print(f"voice-to-voice   p50 {f['v2v_p50_ms']} ms   p95 {f['v2v_p95_ms']} ms   max {f['v2v_max_ms']} ms  (at the socket)")
    sm = f["stage_median_ms"]
    print("stage medians    " + "   ".join(f"{k} {v:.0f}" for k, v in sm.items()) + "  (ms)")
    print(f"line             longest gap between frames received {f['max_gap_received_ms']} ms (Asterisk hangs up at 2000)"
          f"   underruns {f['underruns']}   late restarts {f['late_restarts']}   protocol errors {f['line_errors']}"
          f"   timeouts {f['timeouts']}")
    print(f"CPU              this process {f['cpu_process_pct_of_machine']} %, others {f['cpu_others_pct_of_machine']} % "
          f"of {os.cpu_count()} cores; load {f['loadavg_before'][0]:.2f} -> {f['loadavg_after'][0]:.2f}")
    print(f"peak RSS         {f['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
