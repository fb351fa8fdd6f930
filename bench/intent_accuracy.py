"""Intent recognizer accuracy and speed on the labelled caller utterances.

    .venv/bin/python bench/intent_accuracy.py            # tuning set and holdout
    .venv/bin/python bench/intent_accuracy.py --tuning-only   # while tuning: keep the holdout unseen
    .venv/bin/python bench/intent_accuracy.py --errors   # also list every misrecognized utterance
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.nlu.evaluation import Report, evaluate, load_labelled_set  # noqa: E402
from agents.nlu.intents import IntentRecognizer  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _print_report(name: str, report: Report, *, errors: bool) -> None:
    print(f"{name:8} accuracy {report.accuracy:6.1%}  ({report.correct}/{report.total})"
          f"   noisy ASR variants {report.noisy_accuracy:6.1%} ({report.noisy_correct}/{report.noisy_total})")
    for (expected, got), count in sorted(report.confusion().items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"           {expected:>24} -> {got:<24} x{count}")
    if errors:
        for example, got in report.errors:
            print(f"           {example.intent:>24} -> {got:<24} {example.text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuning-only", action="store_true", help="do not run the holdout")
    parser.add_argument("--errors", action="store_true", help="list misrecognized utterances")
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over the whole set")
    args = parser.parse_args()

    started = time.perf_counter()
    recognizer = IntentRecognizer()
    build_ms = (time.perf_counter() - started) * 1000
    sections = load_labelled_set()
    recognizer.recognize("warm up")

    reports = {"tuning": evaluate(recognizer, sections["tuning"])}
    if not args.tuning_only:
        reports["holdout"] = evaluate(recognizer, sections["holdout"])
    for name, report in reports.items():
        _print_report(name, report, errors=args.errors)
    if not args.tuning_only:
        total = sum(r.total for r in reports.values())
        correct = sum(r.correct for r in reports.values())
        print(f"overall  accuracy {correct / total:6.1%}  ({correct}/{total})")

    # Timing: every utterance, several passes, one recognizer (as the dialog engine uses it).
    texts = [e.text for name in reports for e in sections[name]]
    timings: list[float] = []
    for _ in range(args.repeat):
        for text in texts:
            t0 = time.perf_counter()
            recognizer.recognize(text)
            timings.append((time.perf_counter() - t0) * 1000)
    print(f"recognizer build {build_ms:.1f} ms; per utterance over {len(timings)} calls: "
          f"p50 {statistics.median(timings):.3f} ms  p95 {_percentile(timings, 0.95):.3f} ms  "
          f"max {max(timings):.3f} ms")


if __name__ == "__main__":
    main()
