"""Voice-to-voice latency over the Twilio path: μ-law phone audio through the real Media Streams
consumer, under a real daphne, measured at the socket.

A daphne process serves the project's ASGI application (spawned as in the end-to-end tests,
with Whisper and Piper loaded at start). N concurrent callers, in this process, each play
Twilio over a loopback WebSocket (telephony/twilio/tests/media_stream.py): X-Twilio-Signature,
`connected`, `start` with the call's parameters, then a 160-byte μ-law `media` message every
20 ms for the whole call, echoing the server's marks as they play. Each caller says Asterisk
telephone prompts (8 kHz recordings, the one-utterance set of bench/voice_latency.py) with
silence between them, waiting 0.6-1.2 s after the agent's reply is over before the next.

Voice-to-voice runs from sending the `media` frame that holds the last caller speech sample
(-40 dB from the peak) to receiving the first `media` frame with sound in it (decoded; peak
|sample| >= 500). Underruns are gaps over 60 ms between two agent frames of one reply, at the
socket. Stage times come from the Turn rows the session stores.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/twilio_latency.py --calls 4 --turns 10
        [--endpointing-ms 300] [--seed 1] [--json OUT.json] [-v]

The database must be migrated. A throwaway agent and its calls are created and deleted
afterwards; the post-call pipeline is kept out (in-memory broker), and transfers or hang-ups
go to the fake provider, never to Twilio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.voice_latency import SOUNDS, TRANSCRIPTS, cpu_times, load_prompts, median, percentile  # noqa: E402

UNDERRUN_GAP_S = 0.060  # as the session's playout counts them
FRAME_S = 0.02


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def process_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reply_gaps(client, start: float, end: float) -> list[float]:
    """Silences between consecutive agent frames that arrived in (start, end]: one reply."""
    arrivals = [at for at, _ in client.received if start < at <= end]
    return [b - a - FRAME_S for a, b in zip(arrivals, arrivals[1:])]


async def one_call(index: int, args, port: int, agent, prompts, results: dict, start_delay: float) -> None:
    from asgiref.sync import sync_to_async

    from telephony.twilio.tests.media_stream import AiohttpWire, MediaStreamClient, signature, twilio_call

    await asyncio.sleep(start_delay)
    rng = random.Random(args.seed * 1000 + index)
    turns_left = args.turns
    while turns_left > 0:
        call = await sync_to_async(twilio_call)(agent, caller=f"+1555010{index:04d}")
        results["calls"].append(call.pk)
        wire = AiohttpWire(f"ws://127.0.0.1:{port}/ws/telephony/twilio/media/",
                           headers={"X-Twilio-Signature": signature()})
        client = MediaStreamClient.for_call(wire, call)
        if not await client.open():
            raise RuntimeError(f"the stream was refused ({wire.refused})")
        try:
            last = await client.reply_over(after=0.0, timeout=60)  # the greeting
            while turns_left > 0:
                await asyncio.sleep(rng.uniform(0.6, 1.2))  # the caller thinks, then answers
                name, ulaw = rng.choice(prompts)
                spoken_at = await client.say(ulaw)
                turns_left -= 1
                over = await client.reply_over(after=max(spoken_at, last), timeout=60)
                first = client.audible_after(spoken_at)
                if first is not None:
                    results["v2v"].append((first - spoken_at) * 1000)
                    results["prompts"].append(name)
                    # The reply's first frame, audible or not: the rest is the quiet onset of its first word.
                    frame = next(at for at, _ in client.received if at > spoken_at)
                    results["first_frame"].append((frame - spoken_at) * 1000)
                gaps = reply_gaps(client, spoken_at, over)
                results["underruns"] += sum(gap > UNDERRUN_GAP_S for gap in gaps)
                results["max_gap_ms"] = max([results["max_gap_ms"], *(gap * 1000 for gap in gaps)])
                last = over
            await client.stop()
            await client.until_closed(timeout=30)
        except AssertionError as error:  # a timeout or a closed stream: counted, the run goes on
            results["failures"].append(f"call {index}: {error}")
        finally:
            await client.close()
            results["violations"] += len(client.violations)
            results["marks"] += len(client.marks)
            results["echoes"] += len(client.echoes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1, help="concurrent calls")
    parser.add_argument("--turns", type=int, default=10, help="caller turns per concurrent call")
    parser.add_argument("--endpointing-ms", type=int, default=300, help="the throwaway agent's endpointing silence")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every turn")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    os.environ.setdefault("DEBUG", "1")
    # The server (spawned below) inherits these: Twilio's signature, its public URL, no REST calls.
    os.environ["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    os.environ.setdefault("PUBLIC_BASE_URL", "https://voicecrm.bench.invalid")
    os.environ["TELEPHONY_TWILIO_PROVIDER"] = "telephony.fake.FakeProvider"
    import django

    django.setup()
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    from django.conf import settings

    from agents.models import AgentConfig
    from calls.models import Call, Turn
    from calls.speech.audio import read_wav, ulaw_encode
    from telephony.browser.tests.live import LiveDaphne
    from voicecrm.celery import app

    if not TRANSCRIPTS.is_file():
        print(f"missing {TRANSCRIPTS}: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav")
        return 2
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"

    agent = AgentConfig.objects.create(
        name="Twilio latency benchmark", slug=f"twilio-latency-bench-{os.getpid()}",
        greeting="Thanks for calling. How can I help?", closing="Goodbye.",
        endpointing_silence_ms=args.endpointing_ms, silence_reprompt_seconds=30, silence_hangup_seconds=60,
    )
    server = LiveDaphne(host="127.0.0.1", database_name=settings.DATABASES["default"]["NAME"], sample_rates=(8000,))
    results = {"v2v": [], "first_frame": [], "prompts": [], "calls": [], "underruns": 0, "max_gap_ms": 0.0, "failures": [],
               "violations": 0, "marks": 0, "echoes": 0}
    try:
        prompts = [(name, ulaw_encode(read_wav(SOUNDS / f"{name}.wav", rate=8000)))
                   for name, _, _ in load_prompts(agent.endpointing_silence_ms)]
        print(f"{len(prompts)} one-utterance Asterisk prompts; starting daphne (loads the models)…", flush=True)
        server.start()
        port = server.wait_ready(timeout=300)

        load_before = os.getloadavg()
        cpu0, busy0 = cpu_times()
        server_cpu0 = process_cpu_s(server.pid)
        wall0 = time.monotonic()

        async def all_calls():
            stagger = 2.0 / max(1, args.calls)
            await asyncio.gather(*(one_call(i, args, port, agent, prompts, results, i * stagger)
                                   for i in range(args.calls)))

        asyncio.run(all_calls())
        wall = time.monotonic() - wall0
        cpu1, busy1 = cpu_times()
        server_cpu = process_cpu_s(server.pid) - server_cpu0
        load_after = os.getloadavg()
        server_rss = process_peak_rss_mb(server.pid)

        ids = results["calls"]
        deadline = time.monotonic() + 30  # the server finalizes the last calls after their streams close
        while Call.objects.filter(pk__in=ids, ended_at__isnull=True).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        caller_turns = Turn.objects.filter(call_id__in=ids, speaker="caller")
        agent_turns = Turn.objects.filter(call_id__in=ids, speaker="agent").exclude(voice_to_voice_ms=None)
        if args.verbose:
            for turn in Turn.objects.filter(call_id__in=ids).order_by("call_id", "index"):
                timings = [f"{k}={getattr(turn, k)}" for k in ("endpointing_ms", "stt_ms", "agent_ms",
                           "tts_first_audio_ms", "voice_to_voice_ms") if getattr(turn, k) is not None]
                print(f"  call {turn.call_id} #{turn.index} {turn.speaker:6} {' '.join(timings):60} {turn.text[:70]}")
        ncpu = os.cpu_count() or 1
        v2v = results["v2v"]
        figures = {
            "calls": args.calls, "turns": len(v2v), "streams": len(ids), "endpointing_ms": agent.endpointing_silence_ms,
            "stt_model": agent.stt_model, "stt_threads": settings.STT_THREADS, "speech_workers": settings.SPEECH_WORKERS,
            "v2v_p50_ms": round(percentile(v2v, 50)), "v2v_p95_ms": round(percentile(v2v, 95)),
            "v2v_max_ms": round(max(v2v)) if v2v else None,
            "first_frame_p50_ms": round(percentile(results["first_frame"], 50)),
            "stage_median_ms": {
                "endpointing": median(list(caller_turns.values_list("endpointing_ms", flat=True))),
                "stt_wait": median(list(caller_turns.values_list("stt_ms", flat=True))),
                "agent": median(list(agent_turns.values_list("agent_ms", flat=True))),
                "tts_first_audio": median(list(agent_turns.values_list("tts_first_audio_ms", flat=True))),
                "session_v2v": median(list(agent_turns.values_list("voice_to_voice_ms", flat=True))),
            },
            "underruns": results["underruns"], "max_gap_ms": round(results["max_gap_ms"]),
            "marks_sent": results["marks"], "marks_echoed": results["echoes"],
            "protocol_violations": results["violations"], "failures": results["failures"],
            "cpu_server_pct_of_machine": round(100 * server_cpu / wall / ncpu, 1),
            "cpu_clients_pct_of_machine": round(100 * (cpu1 - cpu0) / wall / ncpu, 1),
            "cpu_others_pct_of_machine": round(100 * max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - server_cpu) / wall / ncpu, 1),
            "server_peak_rss_mb": round(server_rss), "loadavg_before": load_before, "loadavg_after": load_after,
            "wall_s": round(wall, 1),
        }
    finally:
        server.stop()
        Call.objects.filter(agent=agent).delete()
        agent.delete()

    f = figures
    print(f"calls {f['calls']} concurrent, {f['turns']} turns in {f['streams']} streams, {f['wall_s']} s; "
          f"Twilio μ-law 8 kHz under daphne; endpointing {f['endpointing_ms']} ms; "
          f"STT {f['stt_model']} ({f['stt_threads']} threads, {f['speech_workers']} speech workers)")
    print(f"voice-to-voice   p50 {f['v2v_p50_ms']} ms   p95 {f['v2v_p95_ms']} ms   max {f['v2v_max_ms']} ms  (at the socket; "
          f"to the reply's first frame, audible or not: p50 {f['first_frame_p50_ms']} ms)")
    sm = f["stage_median_ms"]
    print("stage medians    " + "   ".join(f"{k} {v:.0f}" for k, v in sm.items()) + "  (ms)")
    print(f"underruns        {f['underruns']} (max gap {f['max_gap_ms']} ms)   marks {f['marks_sent']} sent, "
          f"{f['marks_echoed']} echoed   protocol violations {f['protocol_violations']}   failures {len(f['failures'])}")
    for failure in f["failures"]:
        print(f"  {failure}")
    print(f"CPU              daphne {f['cpu_server_pct_of_machine']} %, callers {f['cpu_clients_pct_of_machine']} %, "
          f"others {f['cpu_others_pct_of_machine']} % of {os.cpu_count()} cores; "
          f"load {f['loadavg_before'][0]:.2f} -> {f['loadavg_after'][0]:.2f}")
    print(f"peak RSS         daphne {f['server_peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=2, default=str))
    return 0 if not f["failures"] and not f["protocol_violations"] else 1


if __name__ == "__main__":
    sys.exit(main())
