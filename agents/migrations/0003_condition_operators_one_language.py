"""Stored flows and escalation rules speak the one condition language (core/conditions.py).

Escalation rules used to say `exists` where flows say `set`; every other operator already had
the same name in both. Rewrites the JSON in place; running it twice changes nothing.
"""

from typing import Any

from django.db import migrations

# Old operator name -> the name in core/conditions.py.
RENAMED = {"exists": "set"}
_CONDITION_KEYS = {"var", "all", "any", "not"}


def condition_upgrade(condition: Any) -> Any:
    """A flow condition ({"var": ..., op: ...}, all/any/not) with old operator names renamed."""
    if not isinstance(condition, dict):
        return condition
    if isinstance(condition.get("all"), list) or isinstance(condition.get("any"), list):
        key = "all" if "all" in condition else "any"
        return {**condition, key: [condition_upgrade(c) for c in condition[key]]}
    if "not" in condition:
        return {**condition, "not": condition_upgrade(condition["not"])}
    return {RENAMED.get(key, key): value for key, value in condition.items()}


def when_upgrade(when: Any) -> Any:
    """A rule's `when`: a condition, or a map of field -> values / value / {operator: argument}."""
    if not isinstance(when, dict):
        return when
    if _CONDITION_KEYS & set(when):
        return condition_upgrade(when)
    return {name: ({RENAMED.get(op, op): arg for op, arg in expected.items()} if isinstance(expected, dict) else expected)
            for name, expected in when.items()}


def rules_upgrade(rules: Any) -> Any:
    if not isinstance(rules, list):
        return rules
    return [{**rule, "when": when_upgrade(rule["when"])} if isinstance(rule, dict) and "when" in rule else rule
            for rule in rules]


def flow_upgrade(flow: Any) -> Any:
    """A flow with every branch condition (`next[].if`, `skip_if`) upgraded."""
    if not isinstance(flow, dict) or not isinstance(flow.get("steps"), dict):
        return flow
    steps = {}
    for name, step in flow["steps"].items():
        if isinstance(step, dict):
            step = dict(step)
            if isinstance(step.get("next"), list):
                step["next"] = [{**o, "if": condition_upgrade(o["if"])} if isinstance(o, dict) and "if" in o else o
                                for o in step["next"]]
            if "skip_if" in step:
                step["skip_if"] = condition_upgrade(step["skip_if"])
        steps[name] = step
    return {**flow, "steps": steps}


def agent_configs_upgrade(apps, schema_editor) -> None:
    AgentConfig = apps.get_model("agents", "AgentConfig")
    for agent in AgentConfig.objects.only("pk", "flow", "escalation_rules").iterator():
        flow, rules = flow_upgrade(agent.flow), rules_upgrade(agent.escalation_rules)
        if flow != agent.flow or rules != agent.escalation_rules:
            # update(), not save(): a data fix is not a supervisor's edit, so the version stays.
            AgentConfig.objects.filter(pk=agent.pk).update(flow=flow, escalation_rules=rules)


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0002_flow_validation"),
    ]

    operations = [
        migrations.RunPython(agent_configs_upgrade, migrations.RunPython.noop),
    ]
