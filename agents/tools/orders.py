"""The caller's orders."""

from __future__ import annotations

from agents.engine import CallContext
from agents.text import join_words, money_text
from agents.tools.base import tool
from customers.selectors import order_list_for_customer


@tool(
    name="get_orders",
    description="The caller's recent orders, or one order by its number.",
    parameters={
        "type": "object",
        "properties": {"order_number": {"type": "string", "maxLength": 20}, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
        "additionalProperties": False,
    },
    requires="verified",
)
def get_orders(ctx: CallContext, args: dict) -> dict:
    orders = order_list_for_customer(customer_id=ctx.customer_id, number=args.get("order_number", ""), limit=args.get("limit", 3))
    items = []
    for order in orders:
        names = join_words([item.get("name", item.get("sku", "item")) for item in order.items if isinstance(item, dict)], "and")
        tracking = f", tracking number {order.tracking_number}" if order.tracking_number else ""
        items.append({
            "number": order.number, "status": order.status, "status_text": order.get_status_display().lower(),
            "total": order.total, "total_text": money_text(order.total), "items_text": names,
            "placed_at": order.placed_at, "tracking_number": order.tracking_number,
            "text": f"order {order.number} for {names or 'your items'} is {order.get_status_display().lower()}{tracking}",
        })
    return {"count": len(items), "orders": items, "latest": items[0] if items else None,
            "orders_text": join_words([o["text"] for o in items], "and")}
