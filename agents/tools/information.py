"""Facts the caller shares (lead qualification, driver check-ins…), grouped by category."""

from __future__ import annotations

from agents.engine import CallContext
from agents.tools.base import tool, verified_customer_id


@tool(
    name="share_information",
    description="Record facts the caller shared, grouped by category (contact_details, debt_info, personal_info, qualification…).",
    parameters={
        "type": "object",
        "properties": {
            "category": {"type": "string", "pattern": "^[a-z0-9_-]{1,48}$"},
            "items": {
                "type": "object", "minProperties": 1, "maxProperties": 30,
                "propertyNames": {"pattern": "^[A-Za-z0-9_]{1,64}$"},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            },
        },
        "required": ["category", "items"],
        "additionalProperties": False,
    },
)
def share_information(ctx: CallContext, args: dict) -> dict:
    shared = ctx.state.setdefault("shared", {}).setdefault(args["category"], {})
    texts: dict[str, str] = {}
    for key, value in args["items"].items():
        if value is None or value == "":
            continue
        shared[key] = value
        texts[key] = (("yes" if value else "no") if isinstance(value, bool) else str(value))[:5000]
    if texts:
        # Stored on the call; on the customer's record only when the caller proved to be them.
        ctx.recorder.information_shared(category=args["category"], items=texts, customer_id=verified_customer_id(ctx))
    return {"saved": len(texts), "category": args["category"]}
