"""Call an agent with recorded audio instead of a phone: a full voice session, offline.

    manage.py simulate_call --agent support --audio hello.wav --audio question.wav [--out DIR]
        [--rate 8000] [--caller +14155551000] [--gap 0.8] [--noise-dbfs -60]

Each file is one caller turn. It is streamed into the session in real time, 20 ms a frame,
after the agent has finished speaking and a natural pause (--gap); silence (or line noise)
flows in between, as on a phone line. Every turn is printed with its stage timings, the
Call is stored like any other (transcript, recording, post-call analysis), and --out gets
agent.wav (what the agent said, back to back) and recording.wav (the stereo call as heard).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.models import AgentConfig
from calls.models import Call, Turn
from calls.session import MemoryTransport, VoiceSession, session_warm_up
from calls.session.simulate import SimulatedCaller, wait_until_listening
from calls.speech.audio import SUPPORTED_RATES, AudioError, read_wav, write_wav


class _PrintingTransport(MemoryTransport):
    def __init__(self, rate: int, write) -> None:
        super().__init__(rate)
        self.write = write
        self.t0 = time.monotonic()

    async def send_event(self, event) -> None:
        await super().send_event(event)
        at = f"{time.monotonic() - self.t0:7.2f}s"
        if event["type"] == "caption" and event.get("final"):
            self.write(f"{at}  caller: {event['text']}")
        elif event["type"] == "agent_text":
            self.write(f"{at}  agent:  {event['text']}")
        elif event["type"] == "clear":
            self.write(f"{at}  [barge-in: agent audio cleared]")
        elif event["type"] in ("transfer", "ended"):
            self.write(f"{at}  [{event['type']}: {event.get('target') or event.get('reason')}]")


class Command(BaseCommand):
    help = "Run a voice session against an agent with caller audio from WAV files, in real time."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent", required=True, help="The agent's slug.")
        parser.add_argument("--audio", action="append", required=True, metavar="CALLER.wav",
                            help="One caller turn; repeat for more turns.")
        parser.add_argument("--out", default=None, metavar="DIR", help="Write agent.wav and recording.wav here.")
        parser.add_argument("--rate", type=int, default=8000, choices=sorted(SUPPORTED_RATES),
                            help="The simulated line's outbound sample rate (8000 = telephone).")
        parser.add_argument("--caller", default="", help="Caller ID, e.g. +14155551000.")
        parser.add_argument("--gap", type=float, default=0.8, help="Seconds the caller waits after the agent.")
        parser.add_argument("--noise-dbfs", type=float, default=None, help="Line noise between turns, e.g. -60.")

    def handle(self, *args, agent: str, audio: list[str], out: str | None, rate: int, caller: str, gap: float,
               noise_dbfs: float | None, **options) -> None:
        config = AgentConfig.objects.filter(slug=agent, active=True).first()
        if config is None:
            raise CommandError(f"No active agent with slug {agent!r}.")
        turns = []
        for path in audio:
            try:
                turns.append((path, read_wav(path)))
            except (AudioError, OSError) as exc:
                raise CommandError(f"{path}: cannot read audio: {exc}") from exc
        self.stdout.write(f"Loading speech models for {config} …")
        session_warm_up(agents=[config], sample_rates=[rate])

        transport = _PrintingTransport(rate, self.stdout.write)
        session = VoiceSession(agent=config, transport=transport, channel=Call.Channel.API, caller_number=caller)
        summary = asyncio.run(self._converse(session, transport, turns, gap, noise_dbfs))

        call = Call.objects.get(pk=summary.call_id)
        self.stdout.write("")
        self.stdout.write(f"Call {call.pk} ({call.public_id}): {call.status}, {call.end_reason}, "
                          f"{call.duration_seconds or 0:.1f} s")
        self.stdout.write(f"{'#':>3} {'who':6} {'endpt':>6} {'stt':>6} {'agent':>6} {'tts1st':>6} {'v2v':>6}  text")
        for turn in Turn.objects.filter(call=call).order_by("index"):
            cells = [turn.endpointing_ms, turn.stt_ms, turn.agent_ms, turn.tts_first_audio_ms, turn.voice_to_voice_ms]
            flags = "".join(f" [{flag}]" for flag, on in (("interrupted", turn.interrupted), ("partial", turn.partial),
                                                          (turn.intent, turn.intent == "filler")) if on)
            heard = f" (heard: {turn.heard_text!r})" if turn.interrupted or turn.partial else ""
            self.stdout.write(f"{turn.index:>3} {turn.speaker:6} "
                              + " ".join(f"{'' if c is None else c:>6}" for c in cells)
                              + f"  {turn.text}{heard}{flags}")
        stats = summary.stats
        self.stdout.write(f"stats: {stats.frames_in} frames in, {stats.frames_out} out, {stats.underruns} underruns, "
                          f"{stats.barge_ins} barge-ins, speculative STT {stats.speculative_used}/"
                          f"{stats.speculative_started} used, {stats.errors} errors")
        if out:
            directory = Path(out)
            directory.mkdir(parents=True, exist_ok=True)
            write_wav(directory / "agent.wav", transport.audio, rate)
            if call.recording:
                with call.recording.open("rb") as fh:
                    (directory / "recording.wav").write_bytes(fh.read())
            self.stdout.write(f"wrote {directory / 'agent.wav'} and {directory / 'recording.wav'}")

    async def _converse(self, session, transport, turns, gap: float, noise_dbfs: float | None):
        caller = SimulatedCaller(session, noise_dbfs=noise_dbfs)
        run = asyncio.create_task(session.run())
        feed = asyncio.create_task(caller.run())

        try:
            if await wait_until_listening(transport, timeout=60, run=run):
                for path, pcm in turns:
                    await asyncio.sleep(gap)
                    if run.done():
                        break
                    self.stdout.write(f"{time.monotonic() - transport.t0:7.2f}s  [playing {path}, "
                                      f"{len(pcm) / 32000:.1f} s]")
                    said = await caller.say(pcm)
                    if not await wait_until_listening(transport, after=said, timeout=60, run=run):
                        break
                await asyncio.sleep(gap)
        except TimeoutError:
            self.stderr.write("the agent did not answer within 60 s; hanging up")
        finally:
            if not run.done():
                caller.hang_up()
            summary = await run
            caller.stop()
            await feed
        return summary
