"""Ending the conversation: a transfer to a person, or the end of the call."""

from __future__ import annotations

from agents.engine import CallContext
from agents.tools.base import ToolError, tool


@tool(
    name="transfer_to_human",
    description="Transfer the caller to a person (the agent's transfer target).",
    parameters={"type": "object", "properties": {"reason": {"type": "string", "maxLength": 200}}, "additionalProperties": False},
)
def transfer_to_human(ctx: CallContext, args: dict) -> dict:
    target = ctx.agent.transfer_target
    if not target:
        raise ToolError("no_transfer_target", "Nobody is available to take a transfer on this line.")
    ctx.recorder.transfer_requested(target=target, reason=args.get("reason", ""))
    return {"transferred": True, "target": target, "reason": args.get("reason", "")}


@tool(
    name="end_call",
    description="End the call after saying goodbye, with the reason (resolved, caller_goodbye, not_qualified, callback…).",
    parameters={"type": "object", "properties": {"reason": {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"}},
                "required": ["reason"], "additionalProperties": False},
)
def end_call(ctx: CallContext, args: dict) -> dict:
    ctx.state["ended"] = True
    return {"ended": True, "reason": args["reason"]}
