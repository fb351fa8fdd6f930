"""Scenario packs: one folder per shipped scenario (docs/scenarios.md).

    agents/scenarios/<slug>/
        scenario.yaml      name, AgentConfig scenario, greeting (greeting_known, greeting_outbound), closing,
                           persona, tools; for outbound calls voicemail_message, retry_attempts,
                           retry_spacing_minutes
        flow.yaml          the built-in flow (docs/flows.md)
        schema.yaml        the post-call extraction schema (x-entity / x-hints per field)
        rules.yaml         post-call escalation rules (core/conditions.py)
        vocabulary.yaml    optional: the scenario's word lists and patterns, read by recognizers.py
        recognizers.py     optional: code that turns caller text into the scenario's entities
                           (`ENTITIES`: name -> fn(text, env))
        conversations/     scripted conversations (YAML) run by `manage.py test_conversations`

`scenario_list()` and `scenario_get(slug)` are the only way to read packs; they are read once
per process. Data files are YAML; Python only where a pack needs code.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKS_DIR = Path(__file__).resolve().parent
_REQUIRED_FILES = ("scenario.yaml", "flow.yaml", "schema.yaml")


class ScenarioError(Exception):
    """A pack is missing or malformed."""


@dataclass(frozen=True)
class Scenario:
    slug: str
    scenario: str  # AgentConfig.scenario: which built-in flow an agent with an empty flow gets
    name: str
    path: Path
    greeting: str
    closing: str
    persona: str = ""
    greeting_known: str = ""
    greeting_outbound: str = ""  # when the agent placed the call
    voicemail_message: str = ""  # left on an answering machine by an outbound call
    retry_attempts: int = 0  # outbound: redials of a busy or unanswered number
    retry_spacing_minutes: int = 15
    tools: tuple[str, ...] = ()
    transfer_target: str = ""
    flow: dict = field(default_factory=dict)
    extraction_schema: dict = field(default_factory=dict)
    escalation_rules: list[dict] = field(default_factory=list)
    vocabulary: dict = field(default_factory=dict)
    entities: dict[str, Callable[..., Any]] = field(default_factory=dict)

    @property
    def conversations_dir(self) -> Path:
        return self.path / "conversations"

    def agent_fields(self) -> dict[str, Any]:
        """AgentConfig fields for an agent running this scenario as shipped (fresh copies)."""
        flow = copy.deepcopy(self.flow)
        if self.greeting_known:
            flow["greeting_known"] = self.greeting_known
        if self.greeting_outbound:
            flow["greeting_outbound"] = self.greeting_outbound
        return {
            "slug": self.slug, "name": self.name, "scenario": self.scenario, "greeting": self.greeting,
            "closing": self.closing, "persona": self.persona, "enabled_tools": list(self.tools),
            "extraction_schema": copy.deepcopy(self.extraction_schema),
            "escalation_rules": copy.deepcopy(self.escalation_rules), "flow": flow,
            "transfer_target": self.transfer_target, "voicemail_message": self.voicemail_message,
            "retry_attempts": self.retry_attempts, "retry_spacing_minutes": self.retry_spacing_minutes,
        }


def _yaml(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return default if data is None else data


def scenario_load(path: Path) -> Scenario:
    """Read one pack folder. Packs inside agents/scenarios/ may carry recognizers.py."""
    missing = [name for name in _REQUIRED_FILES if not (path / name).exists()]
    if missing:
        raise ScenarioError(f"{path}: missing {', '.join(missing)}")
    meta = _yaml(path / "scenario.yaml", {})
    for key in ("scenario", "name", "greeting", "closing"):
        if not isinstance(meta.get(key), str):
            raise ScenarioError(f"{path / 'scenario.yaml'}: needs \"{key}\"")
    entities: dict[str, Callable[..., Any]] = {}
    if (path / "recognizers.py").exists():
        module = importlib.import_module(f"{__name__}.{path.name}.recognizers")
        entities = dict(getattr(module, "ENTITIES", {}))
    return Scenario(
        slug=path.name, scenario=meta["scenario"], name=meta["name"], path=path, greeting=meta["greeting"],
        closing=meta["closing"], persona=meta.get("persona", ""), greeting_known=meta.get("greeting_known", ""),
        greeting_outbound=meta.get("greeting_outbound", ""), voicemail_message=meta.get("voicemail_message", ""),
        retry_attempts=int(meta.get("retry_attempts", 0)), retry_spacing_minutes=int(meta.get("retry_spacing_minutes", 15)),
        tools=tuple(meta.get("tools") or ()), transfer_target=str(meta.get("transfer_target") or ""),
        flow=_yaml(path / "flow.yaml", {}), extraction_schema=_yaml(path / "schema.yaml", {}),
        escalation_rules=_yaml(path / "rules.yaml", []), vocabulary=_yaml(path / "vocabulary.yaml", {}),
        entities=entities,
    )


@functools.cache
def _packs() -> dict[str, Scenario]:
    packs = {}
    for path in sorted(PACKS_DIR.iterdir()):
        if path.is_dir() and (path / "scenario.yaml").exists():
            packs[path.name] = scenario_load(path)
    return packs


def scenario_list() -> list[Scenario]:
    """Every shipped scenario pack, by slug."""
    return list(_packs().values())


def scenario_get(slug: str) -> Scenario:
    """The pack named `slug`; ScenarioError when there is none."""
    try:
        return _packs()[slug]
    except KeyError:
        raise ScenarioError(f"no scenario pack {slug!r}; packs: {', '.join(_packs())}") from None


def scenario_for(scenario: str) -> Scenario | None:
    """The pack that ships the built-in flow for an AgentConfig.scenario value."""
    return next((s for s in _packs().values() if s.scenario == scenario), None)


def scenario_entities() -> dict[str, Callable[..., Any]]:
    """Entity recognizers the packs add to the engine's own (agents/slots.py), by name."""
    found: dict[str, Callable[..., Any]] = {}
    for pack in _packs().values():
        for name, fn in pack.entities.items():
            if name in found and found[name] is not fn:
                raise ScenarioError(f"entity {name!r} is defined by two packs")
            found[name] = fn
    return found
