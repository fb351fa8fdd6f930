"""The default dialog engine: intents and entities from agents.nlu, driven by the AgentConfig's flow.

The flow (docs/flows.md) is a graph of steps. A turn runs steps until one waits for the caller
(`ask`, `confirm`, `route`); the caller's next utterance is checked against the flow's global
handlers (emergency words, "get me a person", "goodbye"), then consumed by the waiting step, and
the walk goes on. What the agent says comes from the flow's templates and from tool results, so
balances, dates and ticket references are always the database's.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import string
import threading
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.engine import CallContext, DialogEngine, DialogReply, ToolCall
from agents.flows import flow_for
from agents.knowledge import DONT_KNOW
from agents.models import AgentConfig
from agents.nlu.intents import IntentRecognizer, IntentResult
from agents.slots import Env, extract
from agents.text import datetime_text, money_text, time_text
from agents.tools import identity, tool_run
from agents.tools.base import agent_verifies_callers, caller_verified, identity_mark_verified
from core.conditions import OPERATORS, condition_holds, value_at
from core.phones import phone_or_none
from core.text import split_sentences
from customers.selectors import customer_find_by_phone, customer_get

logger = logging.getLogger(__name__)

# Longer input is cut before understanding it: callers do not say 1,000 characters in one turn,
# and matching costs grow with length.
MAX_INPUT_CHARS = 1000
# A guard against flows that loop without waiting for the caller.
MAX_STEPS_PER_TURN = 60
WAITING_STEPS = {"ask", "confirm", "route"}
DEFAULT_REPROMPT = "Sorry, I didn't catch that."
SKIP_WORDS = re.compile(r"\b(?:skip|none|no|nope|i do not have (?:one|an? \w+)|rather not|prefer not|pass)\b", re.I)


# --- templates -----------------------------------------------------------------------------------

def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dict):
        value = value.get("iso")
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    return value if isinstance(value, dt.datetime) else None


class _Formatter(string.Formatter):
    """str.format over the namespace: "{slots.eta:time}", "{customer.first_name}", "{result.balance_text}".

    Missing values render as "". Format specs: time, date, datetime, money, spell (digit by digit), words (underscores to spaces).
    """

    def get_field(self, field_name, args, kwargs):
        return value_at(kwargs, field_name), field_name

    def format_field(self, value, format_spec):
        if value is None:
            return ""
        if format_spec in ("time", "datetime", "date"):
            when = _as_datetime(value)
            if when is None:
                return str(value)
            if format_spec == "time":
                return time_text(when)
            if format_spec == "date":
                local = timezone.localtime(when)
                return f"{local:%A} {local.day} {local:%B}"
            return datetime_text(when)
        if format_spec == "money":
            try:
                return money_text(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                return str(value)
        if format_spec == "spell":
            return " ".join(str(value))
        if format_spec == "words":
            return str(value).replace("_", " ")
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict) and "full" in value:
            return value["full"]
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()
_WHOLE_FIELD = re.compile(r"^\{([A-Za-z0-9_.\-]+)\}$")


def voicemail_text(agent: AgentConfig, variables: dict | None) -> str:
    """The agent's voicemail message for a call placed with `variables` ({context.driver_name};
    a missing one renders empty). Every channel leaves this text. A field the formatter cannot
    read ("{context.}", a stray brace) is left out rather than spoken."""
    template = agent.voicemail_message or ""
    namespace = {"context": variables or {}, "agent": {"name": agent.name}}
    try:
        text = _FORMATTER.vformat(template, (), namespace)
    except (ValueError, IndexError, KeyError, AttributeError):
        logger.warning("bad voicemail template of agent %s: %r", agent.slug, template)
        text = re.sub(r"\{[^{}]*\}|[{}]", "", template)
    # An empty field leaves its spaces behind: "about load ." reads "about load."
    return re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s+", " ", text)).strip()


# --- conditions ----------------------------------------------------------------------------------

# The flow's conditions are the project's one condition language (core/conditions.py).
CONDITION_OPS = OPERATORS


# --- intent recognizers, one per agent version ---------------------------------------------------

_recognizers: dict[tuple, Any] = {}
_recognizers_lock = threading.Lock()


def recognizer_for(agent, flow: dict):
    phrases = flow.get("phrases") or {}
    key = (agent.pk, agent.version, json.dumps(phrases, sort_keys=True))
    with _recognizers_lock:
        found = _recognizers.get(key)
    if found is None:
        found = IntentRecognizer(extra_phrases=phrases) if phrases else IntentRecognizer()
        with _recognizers_lock:
            if len(_recognizers) > 64:
                _recognizers.clear()
            _recognizers[key] = found
    return found


# --- one turn ------------------------------------------------------------------------------------

class _Turn:
    def __init__(self, ctx: CallContext, *, text: str = "", dtmf: str = "") -> None:
        self.ctx = ctx
        # Work on a copy: the caller's state is only replaced by the reply's.
        ctx.state = copy.deepcopy(ctx.state or {})
        self.state = ctx.state
        self.state.setdefault("slots", {})
        self.state.setdefault("results", {})
        self.flow = flow_for(ctx.agent)
        self.steps: dict = self.flow.get("steps", {})
        self.text = text
        self.dtmf = dtmf
        self.env = Env(state=self.state, dtmf=dtmf)
        self.said: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.action: str | None = None
        self.reason = ""
        self.intent_label = ""
        self._intent = None
        self._entities: dict[str, Any] = {}
        self._customer: dict | None = None
        self._customer_id: tuple | None = None

    # -- understanding -------------------------------------------------------------------------
    @property
    def intent(self):
        if self._intent is None:
            if self.dtmf and not self.text:
                self._intent = IntentResult("dtmf", 1.0, {})
            else:
                self._intent = recognizer_for(self.ctx.agent, self.flow).recognize(self.text)
        return self._intent

    def entity(self, name: str) -> Any:
        if name not in self._entities:
            source = self.text or self.dtmf
            self._entities[name] = extract(name, source, self.env) if source else None
        return self._entities[name]

    # -- namespace and templates ---------------------------------------------------------------
    def customer(self) -> dict:
        """The caller's record for templates: only whether there is one until the caller is verified,
        so no flow can say a name that came from an account number or a caller ID."""
        key = (self.ctx.customer_id, caller_verified(self.ctx))
        if self._customer is None or self._customer_id != key:
            self._customer_id = key
            row = customer_get(customer_id=self.ctx.customer_id)
            if row is None:
                self._customer = {}
            elif not key[1]:
                self._customer = {"id": row.pk}
            else:
                self._customer = {"id": row.pk, "first_name": row.first_name, "last_name": row.last_name,
                                  "full_name": f"{row.first_name} {row.last_name}".strip()}
        return self._customer

    def namespace(self) -> dict:
        agent = self.ctx.agent
        return {
            "slots": self.state["slots"], "results": self.state["results"], "result": self.state.get("last_result", {}),
            "identity": identity(self.ctx), "customer": self.customer(), "text": self.text, "dtmf": self.dtmf,
            "intent": self.state.get("intent", ""), "caller_number": self.ctx.caller_number,
            "context": self.ctx.variables,
            "counters": self.state.setdefault("counters", {}),
            "agent": {"name": agent.name, "closing": agent.closing, "greeting": agent.greeting,
                      "transfer_target": agent.transfer_target},
        }

    def render(self, template: str | None) -> str:
        if not template:
            return ""
        try:
            return _FORMATTER.vformat(template, (), self.namespace()).strip()
        except (ValueError, IndexError, KeyError, AttributeError):
            logger.warning("bad template in flow of agent %s: %r", self.ctx.agent.slug, template)
            return template

    def render_value(self, value: Any, namespace: dict) -> Any:
        if isinstance(value, str):
            whole = _WHOLE_FIELD.match(value)
            if whole:
                raw = value_at(namespace, whole.group(1))
                return raw.get("iso", raw) if isinstance(raw, dict) and "iso" in raw else raw
            return _FORMATTER.vformat(value, (), namespace).strip()
        if isinstance(value, dict):
            rendered = {k: self.render_value(v, namespace) for k, v in value.items()}
            return {k: v for k, v in rendered.items() if v not in (None, "")}
        if isinstance(value, list):
            return [self.render_value(v, namespace) for v in value]
        return value

    def say(self, template: str | None) -> None:
        text = self.render(template)
        if text:
            self.said.append(text)

    # -- walking the flow ------------------------------------------------------------------------
    def next_of(self, step: dict, key: str = "next") -> str | None:
        target = step.get(key)
        if isinstance(target, list):
            namespace = self.namespace()
            for option in target:
                if "if" not in option or condition_holds(option["if"], namespace):
                    return option["goto"]
            return None
        return target

    def identity_ok(self, requires: str) -> bool:
        """ "identified": a customer is known; "verified": and passed verification; "account": verified
        when the agent verifies callers (it has verify_customer), identified otherwise."""
        if not self.ctx.customer_id:
            return False
        if requires == "verified" or (requires == "account" and agent_verifies_callers(self.ctx)):
            return caller_verified(self.ctx)
        return True

    def goto(self, name: str | None) -> None:
        for _ in range(MAX_STEPS_PER_TURN):
            if not name:
                # The flow ran out: wait at its start again rather than go silent.
                name = self.flow.get("restart") or self.flow.get("start")
                if not name or self.state.get("ended"):
                    self.state["step"] = None
                    return
            step = self.steps[name]
            requires = step.get("requires")
            if requires and not self.identity_ok(requires):
                id_flow = self.flow.get("identity", {})
                if identity(self.ctx).get("locked") and id_flow.get("locked"):
                    name = id_flow["locked"]
                    continue
                self.state.setdefault("stack", []).append(name)
                name = id_flow.get("entry", "identify")
                continue
            kind = step.get("type", "say")
            if "skip_if" in step and condition_holds(step["skip_if"], self.namespace()):
                name = self.next_of(step)
                continue
            if kind == "ask" and self.state["slots"].get(step["slot"]) not in (None, "") and not step.get("always"):
                name = self.next_of(step)
                continue
            if kind in WAITING_STEPS:
                self.say(step.get("say"))
                self.say(step.get("prompt"))
                self.state["step"] = name
                return
            self.say(step.get("say"))
            if step.get("clear_stack"):
                self.state["stack"] = []
            name = self.run_step(name, step, kind)
            if self.state.get("ended"):
                self.state["step"] = None
                return
        logger.error("flow of agent %s looped past %d steps at %s", self.ctx.agent.slug, MAX_STEPS_PER_TURN, name)
        self.state["step"] = self.flow.get("start")

    def run_tool(self, name: str, args: dict, save_as: str | None = None) -> ToolCall:
        call = tool_run(self.ctx, name, args)
        self.tool_calls.append(call)
        result = {"ok": call.ok, **call.result}
        self.state["last_result"] = result
        self.state["results"][save_as or name] = result
        if call.ok and name == "transfer_to_human":
            self.finish("transfer", args.get("reason", "transfer"))
        elif call.ok and name == "end_call":
            self.finish("end_call", args.get("reason", "resolved"))
        return call

    def finish(self, action: str, reason: str) -> None:
        self.action, self.reason = action, reason
        self.state["ended"] = True

    def run_step(self, name: str, step: dict, kind: str) -> str | None:
        if kind == "say":
            return self.next_of(step)
        if kind == "set":
            namespace = self.namespace()
            for key, value in (step.get("slots") or {}).items():
                self.state["slots"][key] = self.render_value(value, namespace)
            for key in step.get("clear", []):
                self.state["slots"].pop(key, None)
            for key, amount in (step.get("count") or {}).items():
                counters = self.state.setdefault("counters", {})
                counters[key] = counters.get(key, 0) + amount
            return self.next_of(step)
        if kind == "branch":
            return self.next_of(step)
        if kind == "tool":
            call = self.run_tool(step["tool"], self.render_value(step.get("args", {}), self.namespace()), step.get("save_as"))
            self.say(step.get("say_ok") if call.ok else step.get("say_error"))
            return None if self.state.get("ended") else self.next_of(step)
        if kind == "knowledge":
            query = self.render(step.get("query", "{text}")) or self.text
            call = self.run_tool("search_knowledge_base", {"query": query[:1000]}) if query else None
            if call and call.ok and call.result.get("found"):
                self.said.append(call.result["answer"])
                self.state["misses"] = 0
                return self.next_of(step)
            self.say(step.get("say_miss", DONT_KNOW))
            return self.next_of(step, "on_miss") or self.next_of(step)
        if kind == "return":
            stack = self.state.get("stack") or []
            return stack.pop() if stack else self.next_of(step)
        if kind == "end":
            if not step.get("say"):
                self.say("{agent.closing}")
            reason = step.get("reason", "resolved")
            if "end_call" in (self.ctx.agent.enabled_tools or []):
                self.run_tool("end_call", {"reason": reason})
            self.finish("end_call", reason)
            return None
        if kind == "transfer":
            reason = step.get("reason", "caller_request")
            call = self.run_tool("transfer_to_human", {"reason": reason})
            if call.ok:
                self.say(step.get("say_ok"))
                self.finish("transfer", reason)
                return None
            self.say(step.get("say_error", "I'm sorry, I can't transfer you to a person right now."))
            return self.next_of(step, "on_fail")
        if kind == "escalate":
            self.finish("escalate", step.get("reason", "escalation"))
            return None
        raise ValueError(f"unknown step type {kind!r}")

    # -- consuming the caller's turn -------------------------------------------------------------
    def global_handler(self, current: str) -> dict | None:
        fired = self.state.setdefault("fired", [])
        for number, handler in enumerate(self.flow.get("global", [])):
            if current in handler.get("except", []) or ("only" in handler and current not in handler["only"]):
                continue
            if handler.get("once") and number in fired:
                continue
            matched = False
            if "dtmf" in handler:
                matched = bool(self.dtmf) and self.dtmf == handler["dtmf"]
            elif "intent" in handler and self.text:
                result = self.intent
                matched = result.intent == handler["intent"] and result.confidence >= handler.get("min_confidence", 0.5)
            elif "entity" in handler:
                value = self.entity(handler["entity"])
                matched = value is not None
                if matched and handler.get("slot"):
                    self.state["slots"][handler["slot"]] = value
            if matched:
                if handler.get("once"):
                    fired.append(number)
                return handler
        return None

    def fill_eager(self) -> None:
        for slot, spec in (self.flow.get("slots") or {}).items():
            if spec.get("eager") and self.state["slots"].get(slot) in (None, ""):
                value = self.entity(spec["entity"])
                if value is not None:
                    self.state["slots"][slot] = value

    def retry(self, name: str, step: dict, *, heard_nothing: bool = False) -> None:
        attempts = self.state.setdefault("attempts", {})
        attempts[name] = attempts.get(name, 0) + 1
        self.state["misses"] = self.state.get("misses", 0) + 1
        if attempts[name] >= step.get("max_attempts", 3):
            attempts.pop(name, None)
            target = step.get("on_fail") or self.flow.get("fallback")
            if target:
                self.goto(target)
                return
        if step.get("reprompt") and not heard_nothing:
            self.say(step["reprompt"])
        else:
            self.say(DEFAULT_REPROMPT)
            self.say(step.get("prompt") or step.get("reprompt"))
        self.state["step"] = name

    def consume(self) -> None:
        name = self.state.get("step")
        if not name or name not in self.steps:
            self.goto(self.flow.get("restart") or self.flow.get("start"))
            name = self.state.get("step")
            if not name:
                return
            self.said.clear()
        step = self.steps[name]
        if not self.text and not self.dtmf:
            self.retry(name, step, heard_nothing=True)
            return
        handler = self.global_handler(name)
        if handler is not None:
            self.intent_label = handler.get("label", handler.get("intent", handler.get("entity", "")))
            self.fill_eager()
            self.say(handler.get("say"))
            self.goto(handler["goto"])
            return
        kind = step["type"]
        if kind == "ask":
            value = self.entity(step["entity"])
            if value is None and step.get("optional") and SKIP_WORDS.search(self.text or ""):
                value = ""
            if value is None and "otherwise" in step:
                # Emergencies and free answers: take what was said rather than ask again.
                value = self.render_value(step["otherwise"], self.namespace())
            if value is None:
                self.fill_eager()
                self.retry(name, step)
                return
            self.state["slots"][step["slot"]] = value
        elif kind == "confirm":
            answer = self.entity("yes_no")
            if answer is None:
                answer = {"affirm": "yes", "deny": "no"}.get(self.intent.intent)
            if answer not in ("yes", "no"):
                self.fill_eager()
                self.retry(name, step)
                return
            if step.get("slot"):
                self.state["slots"][step["slot"]] = answer == "yes"
        elif kind == "route":
            result = self.intent
            routes = {**(self.flow.get("routes") or {}), **(step.get("routes") or {})}
            target = routes.get(result.intent) or (step["default"] if "default" in step else self.flow.get("default_route"))
            self.state["intent"] = result.intent
            if step.get("save_text_as") and self.text:
                self.state["slots"][step["save_text_as"]] = self.text[:500]
            if not target:
                self.retry(name, step)
                return
            self.state.get("attempts", {}).pop(name, None)
            self.state["misses"] = 0
            self.fill_eager()
            self.goto(target)
            return
        self.state.get("attempts", {}).pop(name, None)
        self.state["misses"] = 0
        self.fill_eager()
        target = self.next_of(step, {"yes": "yes", "no": "no"}.get(answer, "next")) if kind == "confirm" else self.next_of(step)
        self.goto(target)

    def reply(self) -> DialogReply:
        sentences: list[str] = []
        for text in self.said:
            sentences.extend(split_sentences(text))
        self.state["turns"] = self.state.get("turns", 0) + 1
        intent = self.intent_label or (self.intent.intent if (self.text or self.dtmf) else "")
        return DialogReply(
            sentences=sentences, intent=intent, tool_calls=self.tool_calls, state=self.state,
            customer_id=self.ctx.customer_id, action=self.action, action_reason=self.reason,
        )


class DeterministicEngine(DialogEngine):
    """Works offline, in a few milliseconds a turn; the default engine."""

    # A turn's writes (tool rows, CallEvents) commit together: one commit per turn instead of one
    # per row keeps the reply inside its 30 ms budget; each tool still rolls back alone on failure.
    @transaction.atomic
    def start(self, ctx: CallContext) -> DialogReply:
        turn = _Turn(ctx)
        self.caller_id_lookup(ctx)
        flow = turn.flow
        # Greeting by name says who the number belongs to: only to a caller the agent trusts. An
        # outbound call greets with what its placer knows ({context.driver_name}).
        if ctx.direction == "outbound" and flow.get("greeting_outbound"):
            turn.say(flow["greeting_outbound"])
        elif caller_verified(ctx):
            turn.say(flow.get("greeting_known") or "Hi {customer.first_name}. {agent.greeting}")
        else:
            turn.say(flow.get("greeting") or "{agent.greeting}")
        turn.goto(flow.get("start"))
        return turn.reply()

    @transaction.atomic
    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        text = re.sub(r"\s+", " ", (text or "")).strip()[:MAX_INPUT_CHARS]
        dtmf = re.sub(r"[^0-9*#]", "", dtmf or "")
        turn = _Turn(ctx, text=text, dtmf=dtmf)
        if turn.state.get("ended"):
            return turn.reply()
        turn.consume()
        return turn.reply()

    def stream(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> Iterator[str | DialogReply]:
        reply = self.respond(ctx, text=text, dtmf=dtmf)
        yield from reply.sentences
        yield reply

    @staticmethod
    def caller_id_lookup(ctx: CallContext) -> bool:
        """Match the caller ID to a customer before the greeting; True when one is found.

        Caller ID can be spoofed, so a match only identifies the caller, unless the agent trusts
        caller ID (AgentConfig.trust_caller_id), when it verifies them too.
        """
        if ctx.customer_id:
            identity(ctx)
            return True
        phone = phone_or_none(ctx.caller_number) if ctx.caller_number else None
        customer = customer_find_by_phone(phone) if phone else None
        if customer is None:
            return False
        ident = identity(ctx)
        ident.update(customer_id=customer.pk, verified=False, method="caller_id", locked=customer.verification_locked())
        ctx.customer_id = customer.pk
        ctx.recorder.customer_identified(customer_id=customer.pk, method="caller_id")
        ctx.recorder.event(kind="action", name="caller_id_match", payload={"customer_id": customer.pk, "phone": phone})
        if getattr(ctx.agent, "trust_caller_id", False):
            identity_mark_verified(ctx, method="caller_id")
        return True
