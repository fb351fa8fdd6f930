"""Validation of the JSON a supervisor types into an AgentConfig."""

import string
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

from core.conditions import condition_errors, when_errors

# Field types the post-call extractor knows how to fill.
EXTRACTABLE_TYPES = {"string", "number", "integer", "boolean"}


def validate_extraction_schema(schema: Any) -> None:
    if schema in (None, {}):
        return
    if not isinstance(schema, dict):
        raise ValidationError("The extraction schema must be a JSON object.")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"Not a valid JSON Schema at {path}: {exc.message}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValidationError('The extraction schema must be {"type": "object", "properties": {...}}.')
    for name, field in schema["properties"].items():
        kind = field.get("type") if isinstance(field, dict) else None
        if kind not in EXTRACTABLE_TYPES and "enum" not in field:
            raise ValidationError(f"Field {name!r}: type must be one of {sorted(EXTRACTABLE_TYPES)} or an enum.")
    missing = [name for name in schema.get("required", []) if name not in schema["properties"]]
    if missing:
        raise ValidationError(f"Required fields not in properties: {', '.join(missing)}.")


def validate_string_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Must be a JSON list of names, e.g. [\"find_customer\", \"create_ticket\"].")


def validate_rule_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValidationError("Must be a JSON list of rule objects.")
    for number, rule in enumerate(value, start=1):
        if "action" not in rule:
            raise ValidationError(f"Rule {number} has no \"action\".")
        errors = when_errors(rule.get("when", {}), where=f"Rule {number} when")
        if errors:
            raise ValidationError(errors[:20])


def validate_object(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")


# --- flows (docs/flows.md) ----------------------------------------------------------------------

STEP_TYPES = {"say", "ask", "confirm", "route", "tool", "branch", "knowledge", "set", "return", "end", "transfer", "escalate"}
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}
_TRANSITION = {
    "oneOf": [
        _NAME,
        {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["goto"], "additionalProperties": False,
            "properties": {"if": {"type": "object"}, "goto": _NAME}}},
    ]
}
_STEP_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": sorted(STEP_TYPES)},
        "say": {"type": "string"}, "prompt": {"type": "string"}, "reprompt": {"type": "string"},
        "say_ok": {"type": "string"}, "say_error": {"type": "string"}, "say_miss": {"type": "string"},
        "requires": {"enum": ["identified", "verified", "account"]},
        "slot": _NAME, "entity": {"type": "string"}, "always": {"type": "boolean"}, "optional": {"type": "boolean"},
        "otherwise": {}, "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
        "on_fail": _NAME, "on_miss": _NAME, "yes": _NAME, "no": _NAME, "default": {"type": "string"},
        "next": _TRANSITION, "skip_if": {"type": "object"}, "clear_stack": {"type": "boolean"},
        "routes": {"type": "object", "additionalProperties": _NAME}, "save_text_as": _NAME,
        "tool": {"type": "string"}, "args": {"type": "object"}, "save_as": _NAME, "query": {"type": "string"},
        "slots": {"type": "object"}, "clear": {"type": "array", "items": _NAME},
        "count": {"type": "object", "additionalProperties": {"type": "integer"}},
        "reason": {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"},
    },
}
FLOW_SCHEMA = {
    "type": "object",
    "required": ["start", "steps"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "start": _NAME, "restart": _NAME, "fallback": _NAME, "default_route": _NAME,
        "greeting": {"type": "string"}, "greeting_known": {"type": "string"},
        "greeting_outbound": {"type": "string"},
        "identity": {"type": "object", "additionalProperties": False, "properties": {
            "entry": _NAME, "locked": _NAME, "require_verification": {"type": "boolean"},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10}}},
        "phrases": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}}},
        "slots": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["entity"], "additionalProperties": False,
            "properties": {"entity": {"type": "string"}, "eager": {"type": "boolean"}}}},
        "routes": {"type": "object", "additionalProperties": _NAME},
        "global": {"type": "array", "items": {
            "type": "object", "required": ["goto"], "additionalProperties": False,
            "properties": {
                "intent": {"type": "string"}, "entity": {"type": "string"}, "dtmf": {"type": "string", "pattern": "^[0-9*#]{1,8}$"},
                "goto": _NAME, "slot": _NAME, "once": {"type": "boolean"}, "label": {"type": "string"}, "say": {"type": "string"},
                "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "except": {"type": "array", "items": _NAME}, "only": {"type": "array", "items": _NAME}},
            "oneOf": [{"required": ["intent"]}, {"required": ["entity"]}, {"required": ["dtmf"]}]}},
        "steps": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": "^[A-Za-z0-9_]{1,64}$"},
                  "additionalProperties": _STEP_SCHEMA},
    },
}
TEMPLATE_ROOTS = {"slots", "results", "result", "identity", "customer", "text", "dtmf", "intent", "caller_number", "counters", "agent", "context"}
# What each step type needs besides "type".
_REQUIRED = {
    "ask": ("slot", "entity", "next"), "confirm": ("yes", "no"), "tool": ("tool", "next"), "branch": ("next",),
    "knowledge": ("next",), "say": ("next",), "set": ("next",), "transfer": ("on_fail",),
}


def _check_template(where: str, template: Any, errors: list[str]) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            _check_template(f"{where}.{key}", value, errors)
        return
    if isinstance(template, list):
        for n, value in enumerate(template):
            _check_template(f"{where}[{n}]", value, errors)
        return
    if not isinstance(template, str):
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        errors.append(f"{where}: bad template {template!r} ({exc})")
        return
    for field_name in fields:
        root = field_name.split(".")[0]
        if root not in TEMPLATE_ROOTS:
            errors.append(f"{where}: unknown name {{{field_name}}}; names start with one of {', '.join(sorted(TEMPLATE_ROOTS))}")


def _check_condition(where: str, condition: Any, errors: list[str]) -> None:
    errors += condition_errors(condition, where=where, roots=TEMPLATE_ROOTS)


def flow_errors(flow: Any) -> list[str]:
    """Every problem in a flow, as sentences a supervisor can act on; [] when it is valid."""
    if flow in (None, {}):
        return []
    validator = jsonschema.Draft202012Validator(FLOW_SCHEMA)
    errors = []
    for error in sorted(validator.iter_errors(flow), key=lambda e: list(e.path)):
        path = "/".join(str(p) for p in error.path) or "(root)"
        errors.append(f"{path}: {error.message[:300]}")
    if errors:
        return errors
    # Cycle: agents.models validates on save with this module, and the tool registry and the
    # entities import agents.engine, which imports agents.models.
    from agents.slots import ENTITIES  # noqa: PLC0415
    from agents.tools import REGISTRY  # noqa: PLC0415

    steps = flow["steps"]

    def target(where: str, name: Any) -> None:
        if name and name not in steps:
            errors.append(f"{where}: there is no step {name!r}")

    for key in ("start", "restart", "fallback", "default_route"):
        target(key, flow.get(key))
    identity = flow.get("identity", {})
    target("identity.entry", identity.get("entry"))
    target("identity.locked", identity.get("locked"))
    uses_requires = any("requires" in step for step in steps.values())
    if uses_requires and identity.get("entry", "identify") not in steps:
        errors.append("steps use \"requires\" but the flow has no identity entry step (identity.entry, default \"identify\")")
    for route, name in (flow.get("routes") or {}).items():
        target(f"routes.{route}", name)
    for slot, spec in (flow.get("slots") or {}).items():
        if spec["entity"] not in ENTITIES:
            errors.append(f"slots.{slot}: unknown entity {spec['entity']!r}")
    for n, handler in enumerate(flow.get("global") or []):
        target(f"global[{n}].goto", handler["goto"])
        if "entity" in handler and handler["entity"] not in ENTITIES:
            errors.append(f"global[{n}]: unknown entity {handler['entity']!r}")
    for name, step in steps.items():
        where = f"steps.{name}"
        kind = step["type"]
        for key in _REQUIRED.get(kind, ()):
            if key not in step:
                errors.append(f"{where}: a {kind} step needs \"{key}\"")
        for key in ("on_fail", "on_miss", "yes", "no"):
            target(f"{where}.{key}", step.get(key))
        if step.get("default"):
            target(f"{where}.default", step["default"])
        nxt = step.get("next")
        if isinstance(nxt, list):
            for n, option in enumerate(nxt):
                target(f"{where}.next[{n}]", option["goto"])
                if "if" in option:
                    _check_condition(f"{where}.next[{n}].if", option["if"], errors)
        else:
            target(f"{where}.next", nxt)
        for route, route_target in (step.get("routes") or {}).items():
            target(f"{where}.routes.{route}", route_target)
        if "skip_if" in step:
            _check_condition(f"{where}.skip_if", step["skip_if"], errors)
        if "entity" in step and step["entity"] not in ENTITIES:
            errors.append(f"{where}: unknown entity {step['entity']!r}; known: {', '.join(sorted(ENTITIES))}")
        if kind == "tool" and step.get("tool") not in REGISTRY:
            errors.append(f"{where}: unknown tool {step.get('tool')!r}; known: {', '.join(sorted(REGISTRY))}")
        for key in ("say", "prompt", "reprompt", "say_ok", "say_error", "say_miss", "query", "args", "slots", "otherwise"):
            if key in step:
                _check_template(f"{where}.{key}", step[key], errors)
    for key in ("greeting", "greeting_known", "greeting_outbound"):
        if key in flow:
            _check_template(key, flow[key], errors)
    return errors


def validate_flow(value: Any) -> None:
    validate_object(value)
    errors = flow_errors(value)
    if errors:
        raise ValidationError(["Flow: " + e for e in errors[:20]])


# --- who may use which tools (docs/security.md, "The agent is a public API") ---------------------

def agent_identity_errors(*, enabled_tools: list[str], flow: dict, scenario: str, trust_caller_id: bool = False) -> list[str]:
    """Why an agent's tools and flow would let an unverified caller reach what needs a verified one;
    [] when they do not. `flow` empty means the scenario's built-in flow."""
    # Cycle: the tool registry and the built-in flows import agents.engine, which imports agents.models,
    # which validates with this module.
    from agents.flows import DEFAULT_FLOWS  # noqa: PLC0415
    from agents.tools import REGISTRY  # noqa: PLC0415

    guarded = sorted(name for name in enabled_tools if name in REGISTRY and REGISTRY[name].requires == "verified")
    if not guarded:
        return []
    effective = flow if isinstance(flow, dict) and flow.get("steps") else DEFAULT_FLOWS.get(scenario, {})
    identity = effective.get("identity") if isinstance(effective.get("identity"), dict) else {}
    errors = []
    if identity.get("require_verification") is False:
        errors.append(f"{', '.join(guarded)} need a verified caller: remove \"require_verification\": false from "
                      "the flow's identity, or disable those tools.")
    if "verify_customer" not in enabled_tools and not trust_caller_id:
        errors.append(f"{', '.join(guarded)} need a verified caller: enable verify_customer so existing customers "
                      "can verify.")
    return errors
