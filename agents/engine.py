"""The dialog engine interface that the voice session and the text channel call.

    engine = get_dialog_engine()
    reply = engine.start(ctx)                 # the greeting
    reply = engine.respond(ctx, text="...")   # one caller turn
    for item in engine.stream(ctx, text="..."):
        ...                                   # str sentences as they are ready, then the DialogReply

The caller keeps `ctx` between turns: after each reply it stores `reply.state` in `ctx.state`,
`reply.customer_id` in `ctx.customer_id`, and appends both sides to `ctx.history`. Engines are
synchronous and use the ORM; async callers wrap them (`database_sync_to_async`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from agents.models import AgentConfig

logger = logging.getLogger(__name__)


@dataclass
class CallContext:
    agent: AgentConfig
    call_id: int | None  # Call pk, for logging tool CallEvents
    caller_number: str = ""  # caller ID (E.164 or raw), looked up before the greeting
    customer_id: int | None = None  # identified customer, if any
    history: list[tuple[str, str]] = field(default_factory=list)  # (speaker "caller"/"agent", text)
    state: dict = field(default_factory=dict)  # JSON-serializable: flow step, slots, verification attempts…

    def remember(self, reply: "DialogReply", *, caller_text: str | None = None) -> None:
        """Fold a reply into the context, the way every caller of the engine does between turns."""
        if caller_text is not None:
            self.history.append(("caller", caller_text))
        text = " ".join(reply.sentences)
        if text:
            self.history.append(("agent", text))
        self.state = reply.state
        self.customer_id = reply.customer_id


@dataclass
class ToolCall:
    name: str
    arguments: dict
    result: dict
    ok: bool


@dataclass
class DialogReply:
    sentences: list[str]  # the reply, split so speech can start on the first
    intent: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    state: dict = field(default_factory=dict)  # the updated state
    customer_id: int | None = None
    action: str | None = None  # None | "end_call" | "transfer" | "escalate"
    action_reason: str = ""  # e.g. "qualified_transfer", "not_qualified", "caller_goodbye"

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


class DialogEngine:
    """What an engine implements. `stream` has a default built on `respond`."""

    def start(self, ctx: CallContext) -> DialogReply:
        """The greeting, personalized when the caller ID matches a customer."""
        raise NotImplementedError

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        """The reply to one caller turn (an utterance, DTMF digits, or empty for silence)."""
        raise NotImplementedError

    def stream(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> Iterator[str | DialogReply]:
        """Sentences as soon as each is ready, then the complete DialogReply."""
        reply = self.respond(ctx, text=text, dtmf=dtmf)
        yield from reply.sentences
        yield reply


def __getattr__(name: str):
    # settings.DIALOG_ENGINE defaults to "agents.engine.DeterministicEngine"; imported lazily
    # because the engine module imports this one.
    if name == "DeterministicEngine":
        from agents.deterministic import DeterministicEngine

        return DeterministicEngine
    raise AttributeError(name)


@lru_cache(maxsize=4)
def _engine(path: str, llm_base_url: str | None) -> DialogEngine:
    engine = import_string(path)()
    if llm_base_url and path == "agents.engine.DeterministicEngine":
        from agents.llm import LLMEngine

        return LLMEngine(fallback=engine)
    return engine


def get_dialog_engine() -> DialogEngine:
    """The engine named by settings.DIALOG_ENGINE; with LLM_BASE_URL set (and the default engine),
    the LLM engine with the deterministic one as its fallback. Engines are stateless and shared."""
    return _engine(settings.DIALOG_ENGINE, settings.LLM_BASE_URL)


get_dialog_engine.cache_clear = _engine.cache_clear  # for tests that change settings
