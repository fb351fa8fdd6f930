"""Stage 3: fill the agent's extraction schema from the conversation, then validate.

Rule-based by default, with the dialog engine's own entity extractors (agents.slots): each
field gets an entity (from `x-entity` in the schema, the agent's flow, or the field's name and
type) and cue words (from `x-hints`, the flow's prompts and the field's name). A field is read
from the caller's answer to the agent's question about it (the last answer wins), else from
the first thing the caller said that holds one; a few fields come from what the call did
(intent, resolution, escalation_status, appointment_action, ticket_needed: tickets, transfers,
bookings, tool results). Per-field hints in the schema:

    "router_model": {"type": "string", "x-hints": ["router", "model"]}            cue words
    "urgency": {"enum": ["low", "high"], "x-hints": {"high": ["asap", "right away"]}}  phrases per value
    "callback": {"type": "string", "x-entity": "phone"}                           an agents.slots entity
    "pet_breed": {"type": "string", "x-scan": true}      also read from anything the caller said
    "qualified": {"type": "boolean", "x-said-by": "agent"}   a yes/no the agent states ("you qualify")
    "injury_status": {"enum": [...], "x-only-after": "emergency"}   read only once the caller said
                                                    something that entity recognizes

A scenario's field cues live in its pack's schema (agents/scenarios/<slug>/schema.yaml); the code
knows only common CRM field names (NAME_ENTITIES).

With LLM_BASE_URL set, an LLM fills the schema instead, and the rules are the fallback.

Whatever is found is validated against the schema; a value that fails is moved to
`extraction_errors` with the reason, never dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jsonschema
from django.conf import settings
from django.utils import timezone

from agents.flows import flow_for
from agents.nlu.answers import Answer, extract_yes_no
from agents.nlu.normalize import normalize
from agents.slots import ENTITIES, Env, extract
from calls.models import Call, CallEvent
from calls.postcall.conversation import Conversation, Utterance, caller_intent
from calls.postcall.errors import StageSkipped
from calls.postcall.llm import llm_json
from customers.models import Appointment
from tickets.models import Ticket

logger = logging.getLogger(__name__)

# Common CRM field names the dialog engine has an entity for. A scenario's own fields name theirs
# in the schema ("x-entity"); nothing here knows a scenario.
NAME_ENTITIES = {
    "name": "name", "full_name": "name", "caller_name": "name", "customer_name": "name",
    "phone": "phone", "phone_number": "phone", "callback_number": "phone",
    "email": "email", "email_address": "email",
    "account_number": "account_number",
    "postcode": "postcode", "zip": "postcode", "zip_code": "postcode", "postal_code": "postcode",
    "date_of_birth": "date_of_birth",
    "appointment_time": "datetime", "callback_time": "datetime",
    "order_number": "order_number",
}
# Generic entities precise enough to read from anything the caller said, not only from an answer;
# a schema field opts in with "x-scan": true.
SCANNABLE = {"email", "phone", "account_number", "name"}
_NEGATION = re.compile(
    r"\b(?:not|n't|no|never|don't|doesn't|didn't|isn't|aren't|won't|can't|cannot|unfortunately)\b", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class FieldPlan:
    name: str
    spec: dict
    kind: str  # "string", "number", "integer", "boolean", "enum"
    enum: list = field(default_factory=list)
    entity: str | None = None
    cues: list[str] = field(default_factory=list)
    hints: dict[str, list[str]] = field(default_factory=dict)  # enum value -> phrases
    scan: bool = False  # read from anything the caller said, not only from an answer
    said_by: str = "caller"  # a boolean the agent states ("you qualify"): "agent"
    only_after: str | None = None  # read only once the caller said something this entity recognizes

    @property
    def is_datetime(self) -> bool:
        return self.spec.get("format") == "date-time"


# --- planning -----------------------------------------------------------------------------------

def _flow_slots(agent) -> dict[str, dict]:
    """Slot name -> {"entity", "prompt"} from the agent's dialog flow, where the flow asks for it."""
    if agent is None:
        return {}
    try:
        flow = flow_for(agent) or {}
    except Exception:  # a broken flow must not stop the extraction
        logger.warning("cannot read the flow of agent %s", agent.pk, exc_info=True)
        return {}
    slots: dict[str, dict] = {}
    for step in (flow.get("steps") or {}).values():
        if not isinstance(step, dict) or not step.get("slot"):
            continue
        entity = step.get("entity") or ("yes_no" if step.get("type") == "confirm" else None)
        prompt = step.get("say") or step.get("prompt") or ""
        if isinstance(prompt, list):
            prompt = " ".join(str(p) for p in prompt)
        slots.setdefault(step["slot"], {"entity": entity, "prompt": str(prompt)})
    return slots


def _kind(spec: dict) -> str:
    if "enum" in spec:
        return "enum"
    kind = spec.get("type", "string")
    return kind[0] if isinstance(kind, list) else kind


def plan_fields(schema: dict, agent=None) -> list[FieldPlan]:
    flow = _flow_slots(agent)
    plans = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = _kind(spec)
        from_flow = flow.get(name, {})
        entity = spec.get("x-entity") or from_flow.get("entity") or NAME_ENTITIES.get(name)
        if entity is None:
            if kind == "boolean":
                entity = "yes_no"
            elif spec.get("format") == "date-time":
                entity = "eta" if "eta" in name or "arriv" in name else "datetime"
            elif kind in ("number", "integer"):
                entity = "money" if re.search(r"amount|debt|income|price|cost|balance|payment", name) else "number"
        raw_hints = spec.get("x-hints")
        hints = raw_hints if isinstance(raw_hints, dict) else {}
        cues = list(raw_hints) if isinstance(raw_hints, list) else []
        if from_flow.get("prompt"):
            cues.append(_prompt_cue(from_flow["prompt"]))
        cues += [w for w in name.split("_") if len(w) > 3 and w not in {"status", "type", "time"}]
        plans.append(FieldPlan(
            name, spec, kind, list(spec.get("enum", [])), entity, [c for c in cues if c], hints,
            scan=bool(spec.get("x-scan", entity in SCANNABLE)), said_by=str(spec.get("x-said-by", "caller")),
            only_after=spec.get("x-only-after"),
        ))
    return plans


def _prompt_cue(prompt: str) -> str:
    # The flow's question, minus its templates: "What's your ETA, {customer.first_name}?"
    return re.sub(r"\{[^}]*\}", "", prompt).strip(" ,.?!").lower()


# --- reading values --------------------------------------------------------------------------------

def _env(call: Call):
    return Env(state={}, now=call.started_at)


# Whisper writes "4:30 this afternoon" as "430", "4.30" or "4-30" now and then; the time readers want "4:30".
_RUN_TOGETHER_TIME = re.compile(
    r"\b(1[0-2]|[1-9])[.\-]?([0-5]\d)\b(?=\s*(?:a\.?m\b|p\.?m\b|o'?clock|this|in the|tonight|tomorrow))", re.I
)


def _entity(entity: str, text: str, env) -> Any:
    if entity in ("eta", "datetime", "date"):
        text = _RUN_TOGETHER_TIME.sub(r"\1:\2", text)
    if entity == "number":
        m = re.search(r"-?\d+(?:\.\d+)?", normalize(text, digits=True).replace(",", ""))
        return float(m.group(0)) if m else None
    if entity not in ENTITIES:
        return None
    return extract(entity, text, env)


def _as_field_value(plan: FieldPlan, value: Any) -> Any:
    """An entity's value in the shape the schema asks for, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("full") or value.get("iso") or value.get("value")
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        value = value.isoformat()
    if plan.kind == "boolean":
        if isinstance(value, bool):
            return value
        return {"yes": True, "no": False}.get(str(value).lower())
    if plan.kind in ("number", "integer"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value  # kept as said; validation reports it
        return int(number) if plan.kind == "integer" or number.is_integer() else number
    if plan.kind == "enum":
        text = str(value)
        if text in plan.enum:
            return text
        # The caller said something the schema does not allow: keep it, so validation reports it.
        return _enum_from_text(plan, text) or text
    if plan.is_datetime and isinstance(value, str):
        return value
    return value if isinstance(value, str) else str(value)


def _phrases_for(plan: FieldPlan, option: Any) -> list[str]:
    phrases = list(plan.hints.get(str(option), []))
    label = str(option).replace("_", " ")
    if label not in ("none", "other", "unknown", "not applicable"):
        phrases.append(label)
    return phrases


def _enum_from_text(plan: FieldPlan, text: str) -> Any:
    lowered = text.lower()
    for option in plan.enum:
        for phrase in _phrases_for(plan, option):
            for m in re.finditer(rf"\b{re.escape(phrase.lower())}\b", lowered):
                if not _NEGATION.search(lowered[max(0, m.start() - 20):m.start()]):
                    return option
    return None


def _mentions(text: str, cues: list[str]) -> bool:
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(cue.lower())}", lowered) for cue in cues)


def _cue_match(agent_text: str, cues: list[str]) -> int:
    """How specifically the agent's last two sentences (the question, the reminder) ask about a
    field: the length of the longest of its cues they mention, 0 when none."""
    question = " ".join(_SENTENCE_END.split(agent_text.strip())[-2:]).lower()
    return max((len(cue) for cue in cues if re.search(rf"\b{re.escape(cue.lower())}", question)), default=0)


def _question_owners(plans: list[FieldPlan], turns: list[Utterance]) -> dict[int, set[str]]:
    """For each agent turn, the fields it asks about. When a question matches several fields, it
    belongs to those with the most specific cue: "how much do you bring home each month" (the
    income prompt) also contains the debt field's "how much", and is not a debt question."""
    owners: dict[int, set[str]] = {}
    for i, turn in enumerate(turns):
        if turn.speaker != "agent":
            continue
        scores = {plan.name: _cue_match(turn.text, plan.cues) for plan in plans}
        best = max(scores.values(), default=0)
        if best:
            owners[i] = {name for name, score in scores.items() if score == best}
    return owners


def _from_answers(plan: FieldPlan, turns: list[Utterance], env, owners: dict[int, set[str]]) -> Any:
    found = None
    for i, turn in enumerate(turns[:-1]):
        answer = turns[i + 1]
        if turn.speaker != "agent" or answer.speaker != "caller" or plan.name not in owners.get(i, ()):
            continue
        value = _read(plan, answer.text, env)
        if value is not None:
            found = value  # the last answer wins: callers correct themselves when asked again
    return found


def _read(plan: FieldPlan, text: str, env) -> Any:
    if plan.kind == "boolean":
        return _boolean_answer(text)
    if plan.entity:
        value = _as_field_value(plan, _entity(plan.entity, text, env))
        if value is not None:
            return value
    if plan.kind == "enum":
        return _enum_from_text(plan, text)
    if plan.kind == "string" and not plan.is_datetime and plan.entity in (None, "text"):
        return text.strip()[:500] or None
    return None


_ACKNOWLEDGED = re.compile(
    r"\b(?:will do|we'?ll do|i will|i'll do|got it|understood|noted|roger|copy that|sounds good|no problem|okay|ok|sure)\b",
    re.I
)


def _boolean_answer(text: str) -> bool | None:
    answer = extract_yes_no(text)
    if answer is Answer.YES:
        return True
    if answer is Answer.NO:
        return False
    if answer is None and _ACKNOWLEDGED.search(text):
        return True  # "Will do" to a reminder
    return None


def _statement(plan: FieldPlan, text: str) -> bool | None:
    """A yes/no stated outright, every word of the field's name in one sentence:
    "the load is secure" (load_secure), "you don't qualify" (qualified)."""
    words = [w[:5] for w in plan.name.split("_") if len(w) > 2]
    if not words:
        return None
    for sentence in re.split(r"[.!?;]\s*", text.lower()):
        hits = [re.search(rf"\b{re.escape(w)}", sentence) for w in words]
        if all(hits):
            at = max(h.start() for h in hits)
            return not _NEGATION.search(sentence[:at][-40:])
    return None


def _read_specific(plan: FieldPlan, text: str, env) -> Any:
    if plan.scan and plan.entity:
        value = _as_field_value(plan, _entity(plan.entity, text, env))
        if value is not None:
            return value
    if plan.kind == "enum":
        return _enum_from_text(plan, text)
    return None


def _from_statements(plan: FieldPlan, turns: list[Utterance], env) -> Any:
    if plan.kind == "boolean":
        speakers = ("agent",) if plan.said_by == "agent" else ("caller", "mixed")
        for turn in turns:
            if turn.speaker in speakers:
                value = _statement(plan, turn.text)
                if value is not None:
                    return value
        return None
    if not plan.scan and plan.kind != "enum":
        return None
    for turn in turns:
        if turn.speaker in ("caller", "mixed"):
            value = _read_specific(plan, turn.text, env)
            if value is not None:
                return value
    return None


def _reported(entity: str, turns: list[Utterance], env) -> bool:
    """The caller said something `entity` recognizes (an emergency, for the emergency's fields)."""
    return any(t.speaker in ("caller", "mixed") and _entity(entity, t.text, env) not in (None, "") for t in turns)


# --- what the call did ----------------------------------------------------------------------------

def _call_facts(call: Call, turns: list[Utterance]) -> dict[str, Any]:
    events = list(CallEvent.objects.filter(call=call).values_list("kind", "name", "payload"))
    transferred = call.end_reason == "transfer" or any(kind == CallEvent.Kind.TRANSFER for kind, _, _ in events)
    tickets = Ticket.objects.filter(call=call).exists()
    agent_text = " ".join(t.text for t in turns if t.speaker == "agent").lower()
    ticket_said = bool(re.search(r"\b(?:opened|created|raised|logged|filed)\b[^.]{0,40}\bticket\b|\bticket\b[^.]{0,30}"
                                 r"\b(?:opened|created|raised|logged)\b|\breference (?:number )?is\b", agent_text))
    escalated = any(kind == CallEvent.Kind.ESCALATION for kind, _, _ in events) or bool(
        re.search(r"\b(?:escalat\w*|alert\w* (?:a|the|your) (?:supervisor|dispatcher)|notif\w* (?:a|the) supervisor)\b",
                  agent_text))
    booked = Appointment.objects.filter(source_call=call)
    tool_names = {name for kind, name, payload in events if kind == CallEvent.Kind.TOOL_RESULT
                  and (payload or {}).get("ok", True)}
    action = "none"
    if "cancel_appointment" in tool_names or re.search(r"\b(?:has been|is|been) cancel+ed\b", agent_text):
        action = "cancelled"
    elif "reschedule_appointment" in tool_names or re.search(r"\b(?:moved|rescheduled)\b", agent_text):
        action = "rescheduled"
    elif "create_appointment" in tool_names or booked.exists() or re.search(r"\b(?:you are|you're) booked\b|\bbooked (?:you|it)\b",
                                                                            agent_text):
        action = "booked"
    caller_last = next((t.text.lower() for t in reversed(turns) if t.speaker == "caller"), "")
    resolution = (
        "transferred" if transferred else
        "ticket_created" if tickets or ticket_said else
        "resolved" if re.search(r"\b(?:thanks|thank you|that's all|that is all|perfect|great|bye)\b", caller_last) else
        "unresolved"
    )
    return {
        "transferred": transferred, "ticket": tickets or ticket_said, "escalated": escalated,
        "appointment_action": action, "resolution": resolution,
    }


def _derived(plan: FieldPlan, call: Call, facts: dict[str, Any], turns: list[Utterance]) -> Any:
    name = plan.name
    if name == "intent":
        return call.intent or caller_intent(Conversation(turns, "")) or None
    if name == "resolution":
        return facts["resolution"] if facts["resolution"] in plan.enum else None
    if name == "ticket_needed":
        return bool(facts["ticket"])
    if name == "escalation_status":
        value = "transferred" if facts["transferred"] else "escalated" if facts["escalated"] else "not_needed"
        return value if value in plan.enum else None
    if name == "appointment_action":
        return facts["appointment_action"] if facts["appointment_action"] in plan.enum else None
    return None


DERIVED_FIRST = {"intent", "resolution", "ticket_needed", "escalation_status", "appointment_action"}


def extract_rule_based(*, call: Call, conversation: Conversation, schema: dict) -> dict[str, Any]:
    turns = conversation.turns()
    env = _env(call)
    facts = _call_facts(call, turns)
    data: dict[str, Any] = {}
    reported: dict[str, bool] = {}
    plans = plan_fields(schema, call.agent)
    owners = _question_owners(plans, turns)
    for plan in plans:
        if plan.only_after:
            if plan.only_after not in reported:
                reported[plan.only_after] = _reported(plan.only_after, turns, env)
            if not reported[plan.only_after]:
                # The field that names the reported thing itself says it did not happen.
                if plan.entity == plan.only_after and plan.kind == "enum" and "none" in plan.enum:
                    data[plan.name] = "none"
                continue
        value = _derived(plan, call, facts, turns) if plan.name in DERIVED_FIRST else None
        if value is None:
            value = _from_answers(plan, turns, env, owners)
        if value is None:
            value = _from_statements(plan, turns, env)
        if value is None and plan.name == "appointment_time":
            value = _appointment_time(call)
        if value is not None:
            data[plan.name] = value
    return data


def _appointment_time(call: Call) -> str | None:
    appointment = Appointment.objects.filter(source_call=call).order_by("-created_at").first()
    return timezone.localtime(appointment.starts_at).isoformat() if appointment else None


# --- LLM --------------------------------------------------------------------------------------------

def extract_with_llm(*, call: Call, conversation: Conversation, schema: dict) -> dict[str, Any]:
    system = (
        "You extract fields from a phone call transcript into JSON that follows the given JSON Schema. "
        "Use only what the transcript says; leave a field out when the call does not say it. "
        f"Times are in {settings.TIME_ZONE}; the call started at {timezone.localtime(call.started_at).isoformat()}. "
        "Answer with the JSON object only."
    )
    user = f"JSON Schema:\n{json.dumps(schema)}\n\nTranscript:\n{conversation.as_text()}"
    result = llm_json(system=system, user=user)
    props = schema.get("properties") or {}
    return {k: v for k, v in result.items() if k in props and v is not None}


# --- validation ---------------------------------------------------------------------------------------

def _format_checker(cls) -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    # jsonschema checks date-time only with an optional package; check it here, always.
    @checker.checks("date-time", raises=(ValueError, TypeError))
    def _date_time(value) -> bool:
        if not isinstance(value, str):
            return True
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("a date-time needs a time zone offset")
        return True

    return checker


def validate_extraction(schema: dict, data: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """(valid fields, errors). A field that fails keeps its value inside its error entry."""
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=_format_checker(cls))
    errors: list[dict] = []
    bad: set[str] = set()
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            for name in missing or [""]:
                errors.append({"field": name, "error": "required field not found in the call", "validator": "required"})
            continue
        name = str(error.path[0]) if error.path else ""
        if name:
            bad.add(name)
        errors.append({"field": name, "value": data.get(name) if name else None, "error": error.message,
                       "validator": error.validator})
    valid = {k: v for k, v in data.items() if k not in bad}
    return valid, errors


def data_changes(before: dict, after: dict) -> list[dict]:
    """Field by field: added, removed or changed."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if name not in before:
            changes.append({"field": name, "change": "added", "before": None, "after": new})
        elif name not in after:
            changes.append({"field": name, "change": "removed", "before": old, "after": None})
        elif old != new:
            changes.append({"field": name, "change": "changed", "before": old, "after": new})
    return changes


def call_extract(*, call: Call, conversation: Conversation) -> dict:
    """Fill, validate and store the call's structured data; returns the stage detail."""
    agent = call.agent
    schema = agent.extraction_schema if agent else {}
    if not schema or not schema.get("properties"):
        raise StageSkipped("the agent has no extraction schema")
    if conversation.is_empty:
        # An unanswered or silent call: every required field would be "missing", which says nothing.
        raise StageSkipped("nobody spoke on the call")
    method = "rules"
    data: dict[str, Any] | None = None
    if settings.LLM_BASE_URL:
        try:
            data, method = extract_with_llm(call=call, conversation=conversation, schema=schema), "llm"
        except Exception as exc:  # the rules are the fallback for any LLM trouble
            logger.warning("LLM extraction failed for call %s, using rules: %s", call.pk, exc)
    if data is None:
        data = extract_rule_based(call=call, conversation=conversation, schema=schema)
    valid, errors = validate_extraction(schema, data)
    before = dict(call.structured_data or {})
    changes = data_changes(before, valid)
    call.structured_data, call.extraction_errors, call.schema_version = valid, errors, agent.version
    call.save(update_fields=["structured_data", "extraction_errors", "schema_version", "updated_at"])
    properties = schema.get("properties") or {}
    return {
        "method": method, "source": conversation.source, "fields": len(valid), "of": len(properties),
        "errors": len(errors), "schema_version": agent.version, "changes": changes,
    }
