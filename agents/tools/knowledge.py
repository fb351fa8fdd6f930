"""Answers from the agent's knowledge base."""

from __future__ import annotations

from agents.engine import CallContext
from agents.knowledge import knowledge_search
from agents.tools.base import tool


@tool(
    name="search_knowledge_base",
    description="Search the agent's knowledge base for an answer to the caller's question.",
    parameters={"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 1000}},
                "required": ["query"], "additionalProperties": False},
)
def search_knowledge_base(ctx: CallContext, args: dict) -> dict:
    hits = knowledge_search(agent=ctx.agent, query=args["query"], limit=3)
    best = hits[0] if hits and hits[0].confident else None
    return {
        "found": best is not None, "answer": best.entry.answer if best else "", "title": best.entry.title if best else "",
        "confidence": round(hits[0].confidence, 3) if hits else 0.0,
        "results": [{"title": h.entry.title, "confidence": round(h.confidence, 3)} for h in hits],
    }
