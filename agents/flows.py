"""The built-in flow for each scenario, used when an AgentConfig's `flow` is empty.

The flows live in the scenario packs (agents/scenarios/<slug>/flow.yaml); the format is documented
in docs/flows.md, and supervisors copy one of them into the admin and edit it. Every built-in flow
passes `validate_flow` (agents/validators.py).
"""

from __future__ import annotations

import copy

from agents.scenarios import scenario_list

# AgentConfig.scenario -> the flow of the first pack (by slug) for it.
DEFAULT_FLOWS: dict[str, dict] = {}
for _pack in scenario_list():
    DEFAULT_FLOWS.setdefault(_pack.scenario, _pack.flow)
CUSTOMER_SERVICE = DEFAULT_FLOWS["customer_service"]


def default_flow(scenario: str) -> dict:
    """A fresh copy of the built-in flow for `scenario`."""
    return copy.deepcopy(DEFAULT_FLOWS[scenario])


def flow_for(agent) -> dict:
    """The agent's own flow, or the built-in one for its scenario when it has none."""
    flow = agent.flow or {}
    if flow.get("steps"):
        return flow
    return DEFAULT_FLOWS.get(agent.scenario, CUSTOMER_SERVICE)
