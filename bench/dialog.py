"""Dialog engine figures: reply time per turn including database work, and intent accuracy.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voicecrm_dev .venv/bin/python bench/dialog.py [--repeat 5]

Reply time: every scenario pack's scripted conversation (agents/scenarios/*/conversations/) is played against the
deterministic engine on a throwaway copy of the database (test_<name>, created and dropped here),
with writes committed as on a live call: tool queries, tickets, appointments, CallEvent and
InformationRecord rows. Each `engine.start`/`engine.respond` is timed, with its SQL queries counted.
Intent accuracy: the labelled utterances in agents/tests/data/intents.yaml (tuning and holdout,
clean and noisy ASR variants), with the built-in lexicon and with the phrases a demo agent adds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
os.environ.setdefault("DEBUG", "1")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class TimedEngine:
    """The deterministic engine, with each turn's wall time and SQL query count recorded."""

    def __init__(self) -> None:
        from agents.deterministic import DeterministicEngine

        self.engine = DeterministicEngine()
        self.ms: list[float] = []
        self.queries: list[int] = []

    def _timed(self, method, *args, **kwargs):
        from django.db import connection

        count = [0]

        def counter(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            reply = method(*args, **kwargs)
            self.ms.append((time.perf_counter() - started) * 1000)
        self.queries.append(count[0])
        return reply

    def start(self, ctx):
        return self._timed(self.engine.start, ctx)

    def respond(self, ctx, *, text=None, dtmf=None):
        return self._timed(self.engine.respond, ctx, text=text, dtmf=dtmf)


def reply_times(repeat: int) -> None:
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from telephony.chat.conversations import pack_conversations, run_conversation

    if connection.vendor != "postgresql":
        print(f"warning: measuring on {connection.vendor}; set DATABASE_URL to PostgreSQL for the recorded figures")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        conversations = pack_conversations()
        engine = TimedEngine()
        passed = 0
        started = time.perf_counter()
        for round_ in range(repeat + 1):
            if round_ == 1:
                engine.ms.clear()
                engine.queries.clear()  # round 0 warms caches (recognizers, dateparser, knowledge index)
            for source, conversation in conversations:
                # Round 0 checks the conversations pass on a fresh database and is rolled back; timed
                # rounds commit like live calls (rows pile up, so some replies take other branches).
                result = run_conversation(conversation, source=source, engine=engine, rollback=round_ == 0)
                passed += result.passed if round_ == 0 else 0
        wall = time.perf_counter() - started
        print(f"conversations: {len(conversations)} ({passed} pass on a fresh database), {repeat} timed rounds committing, "
              f"{len(engine.ms)} turns timed, {wall:.1f} s in all")
        print(f"reply time incl. DB: p50 {statistics.median(engine.ms):.2f} ms   p95 {percentile(engine.ms, 0.95):.2f} ms   "
              f"p99 {percentile(engine.ms, 0.99):.2f} ms   max {max(engine.ms):.2f} ms   (target p95 <= 30 ms)")
        print(f"SQL queries per turn: p50 {statistics.median(engine.queries):.0f}   p95 {percentile(engine.queries, 0.95):.0f}   "
              f"max {max(engine.queries)}")
    finally:
        teardown_databases(old, verbosity=0)


def intent_accuracy() -> None:
    from agents.deterministic import recognizer_for
    from agents.flows import flow_for
    from agents.models import AgentConfig
    from agents.nlu.evaluation import evaluate, load_labelled_set
    from agents.nlu.intents import IntentRecognizer
    from voicecrm.demo.agents import DEMO_AGENTS

    sections = load_labelled_set()
    examples = [e for name in ("tuning", "holdout") for e in sections[name]]
    recognizers = {"built-in lexicon": IntentRecognizer()}
    for spec in DEMO_AGENTS:
        agent = AgentConfig(pk=None, version=0, **{k: v for k, v in spec.items()})
        if (flow_for(agent).get("phrases")):
            recognizers[f"agent {spec['slug']!r} (+ its phrases)"] = recognizer_for(agent, flow_for(agent))
    for name, recognizer in recognizers.items():
        report = evaluate(recognizer, examples)
        holdout = evaluate(recognizer, sections["holdout"])
        print(f"intent accuracy, {name}: {report.accuracy:.1%} ({report.correct}/{report.total}); "
              f"noisy variants {report.noisy_accuracy:.1%} ({report.noisy_correct}/{report.noisy_total}); "
              f"holdout {holdout.accuracy:.1%} ({holdout.correct}/{holdout.total})   (target >= 95%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds over all conversations")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    if not args.skip_timing:
        reply_times(args.repeat)
    intent_accuracy()


if __name__ == "__main__":
    main()
