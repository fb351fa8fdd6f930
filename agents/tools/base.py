"""The tool contract: a name, a JSON schema for the arguments, and a function that runs in a transaction.

Every tool call goes through `tool_run()`, which checks the agent may use the tool, validates the
arguments against the schema, checks the caller's identity where the tool needs it, runs the tool
in a database transaction and reports a `tool_call` and a `tool_result` event to the call's
recorder (`ctx.recorder`). Tools are thin: they read through the apps' selectors, write through
their services, and tell the recorder what the call should remember.

The tools are a public API: anyone who reaches the agent (a widget on a public page, a phone
number) can call them with whatever they say. So a tool that reads anything private or changes
anything about a customer requires a *verified* caller (`requires="verified"`): one who passed
verify_customer on this call, created the record on this call, or called from the record's number
on an agent that trusts caller ID. Finding a record (by account number, phone, name) only
identifies the caller. Verification is reported to the call as a `customer_verified` event, which
post-call writes onto the customer check (calls/postcall/act.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction

from agents.engine import CallContext, ToolCall
from customers.models import Customer
from customers.selectors import customer_get

logger = logging.getLogger(__name__)

# Schema fragments shared by the tools.
SHORT_TEXT = {"type": "string", "maxLength": 200}
ROW_ID = {"type": "integer", "minimum": 1}


class ToolError(Exception):
    """A refusal or failure the agent can explain to the caller; the transaction is rolled back."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra

    def as_result(self) -> dict:
        return {"error": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    func: Callable[[CallContext, dict], dict]
    # "" (anyone), "identified" (a customer is named, e.g. to verify them) or "verified" (the
    # caller proved to be that customer: see `caller_verified`).
    requires: str = ""
    validator: Any = field(default=None, compare=False, repr=False)

    def openai_schema(self) -> dict:
        """The tool as the Chat Completions API describes it."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


REGISTRY: dict[str, Tool] = {}


def tool(*, name: str, description: str, parameters: dict, requires: str = "") -> Callable:
    """Register a tool function under `name`."""
    jsonschema.Draft202012Validator.check_schema(parameters)

    def decorator(func: Callable) -> Callable:
        REGISTRY[name] = Tool(
            name=name, description=description, parameters=parameters, func=func, requires=requires,
            validator=jsonschema.Draft202012Validator(parameters, format_checker=jsonschema.FormatChecker()),
        )
        return func

    return decorator


def identity(ctx: CallContext) -> dict:
    """The caller's identity state in the call's JSON state (created on first use)."""
    ident = ctx.state.setdefault("identity", {})
    ident.setdefault("customer_id", ctx.customer_id)
    ident.setdefault("verified", False)
    ident.setdefault("attempts", 0)
    ident.setdefault("locked", False)
    return ident


# The call event that says the caller proved who they are (payload: customer_id, method); the
# post-call stage reads it before writing onto the customer.
CUSTOMER_VERIFIED_EVENT = "customer_verified"


def agent_verifies_callers(ctx: CallContext) -> bool:
    """Whether the flow's `requires: account` steps need a verified caller: yes unless the flow
    says {"identity": {"require_verification": false}}, which agents/validators.py allows only for
    agents without tools that need a verified caller. The tools check verification themselves."""
    setting = (ctx.agent.flow or {}).get("identity", {}).get("require_verification")
    return True if setting is None else bool(setting)


def caller_verified(ctx: CallContext) -> bool:
    """The caller proved, on this call, to be the customer the call is about."""
    ident = identity(ctx)
    return bool(ctx.customer_id) and bool(ident.get("verified")) and ident.get("customer_id") == ctx.customer_id


def identity_mark_verified(ctx: CallContext, *, method: str) -> None:
    """Record that the identified caller proved who they are (by `method`: verify_customer,
    created, caller_id), in the conversation and on the call."""
    ident = identity(ctx)
    ident.update(verified=True, verified_by=method)
    ctx.recorder.event(kind="action", name=CUSTOMER_VERIFIED_EVENT, payload={"customer_id": ctx.customer_id, "method": method})


def verified_customer_id(ctx: CallContext) -> int | None:
    """The caller's customer id when they are verified; None otherwise: what a tool may write onto."""
    return ctx.customer_id if caller_verified(ctx) else None


def caller_customer(ctx: CallContext) -> Customer:
    """The identified caller's record; a ToolError when there is none."""
    customer = customer_get(customer_id=ctx.customer_id)
    if customer is None:
        raise ToolError("not_identified", "The caller has not been identified yet.")
    return customer


def identity_satisfied(ctx: CallContext, requires: str) -> ToolError | None:
    if not requires:
        return None
    ident = identity(ctx)
    if not ctx.customer_id:
        return ToolError("not_identified", "The caller has not been identified yet.")
    # "account" is the old name of "verified" in stored flows and tools.
    if requires in ("verified", "account") and not caller_verified(ctx):
        if ident.get("locked"):
            return ToolError("verification_locked", "Verification is locked for this customer.")
        return ToolError("not_verified", "The caller must be verified first.")
    return None


def _jsonable(value: Any) -> Any:
    """Round-trip through Django's encoder: Decimals, dates and UUIDs become strings."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _log(ctx: CallContext, kind: str, name: str, payload: dict) -> None:
    try:
        ctx.recorder.event(kind=kind, name=name, payload=payload)
    except DatabaseError:
        # Losing a log row must not lose the caller's request; the error is logged instead.
        logger.exception("could not log %s %s on call %s", kind, name, ctx.call_id)


def tool_run(ctx: CallContext, name: str, arguments: dict | None) -> ToolCall:
    """Run one tool for the call in `ctx` and return what happened; never raises for bad input."""
    arguments = arguments if isinstance(arguments, dict) else {}
    tool_ = REGISTRY.get(name)
    _log(ctx, "tool_call", name, {"arguments": _jsonable(arguments)})
    started = time.perf_counter()
    if tool_ is None:
        error: ToolError | None = ToolError("unknown_tool", f"There is no tool called {name!r}.")
    elif name not in (ctx.agent.enabled_tools or []):
        error = ToolError("not_allowed", f"This agent is not allowed to use {name}.")
    else:
        problems = sorted(tool_.validator.iter_errors(arguments), key=lambda e: list(e.path))
        if problems:
            first = problems[0]
            where = "/".join(str(p) for p in first.path) or "arguments"
            error = ToolError("invalid_arguments", f"{where}: {first.message}")
        else:
            error = identity_satisfied(ctx, tool_.requires)
    if error is None:
        # The state is restored if the tool fails, like the database.
        saved_state = _jsonable(ctx.state)
        saved_customer = ctx.customer_id
        try:
            with transaction.atomic():
                result = _jsonable(tool_.func(ctx, arguments) or {})
            ok = True
        except ToolError as exc:
            error = exc
        except ValidationError as exc:
            error = ToolError("rejected", " ".join(exc.messages))
        if error is not None:
            ctx.state.clear()
            ctx.state.update(saved_state)
            ctx.customer_id = saved_customer
    if error is not None:
        result, ok = error.as_result(), False
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    _log(ctx, "tool_result", name, {"ok": ok, "result": result, "ms": elapsed_ms})
    return ToolCall(name=name, arguments=arguments, result=result, ok=ok)


def tools_for_agent(agent) -> list[Tool]:
    return [REGISTRY[name] for name in (agent.enabled_tools or []) if name in REGISTRY]
