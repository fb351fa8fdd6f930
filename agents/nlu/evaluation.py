"""Scoring the intent recognizer on a labelled set (used by the benchmark and the tests)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agents.nlu.intents import IntentRecognizer

LABELLED_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "intents.yaml"


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    noisy: bool


@dataclass
class Report:
    total: int = 0
    correct: int = 0
    noisy_total: int = 0
    noisy_correct: int = 0
    errors: list[tuple[Example, str]] = field(default_factory=list)
    timings_ms: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def noisy_accuracy(self) -> float:
        return self.noisy_correct / self.noisy_total if self.noisy_total else 0.0

    def confusion(self) -> Counter[tuple[str, str]]:
        return Counter((example.intent, got) for example, got in self.errors)


def load_labelled_set(path: Path = LABELLED_SET) -> dict[str, list[Example]]:
    """{"tuning": [...], "holdout": [...]} from the YAML file (intent -> clean/noisy lists)."""
    data = yaml.safe_load(path.read_text())
    sections: dict[str, list[Example]] = {}
    for section, intents in data.items():
        sections[section] = [
            Example(text=str(text), intent=intent, noisy=(kind == "noisy"))
            for intent, kinds in intents.items()
            for kind in ("clean", "noisy")
            for text in kinds.get(kind, []) or []
        ]
    return sections


def evaluate(recognizer: IntentRecognizer, examples: list[Example]) -> Report:
    report = Report()
    for example in examples:
        started = time.perf_counter()
        result = recognizer.recognize(example.text)
        report.timings_ms.append((time.perf_counter() - started) * 1000)
        ok = result.intent == example.intent
        report.total += 1
        report.correct += ok
        if example.noisy:
            report.noisy_total += 1
            report.noisy_correct += ok
        if not ok:
            report.errors.append((example, result.intent))
    return report
