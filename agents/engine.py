"""The dialog engine interface that the voice session and the text channel call.

    engine = get_dialog_engine()             # agents/registry.py
    reply = engine.start(ctx)                 # the greeting
    reply = engine.respond(ctx, text="...")   # one caller turn
    for item in engine.stream(ctx, text="..."):
        ...                                   # str sentences as they are ready, then the DialogReply

The caller keeps `ctx` between turns: after each reply it stores `reply.state` in `ctx.state`,
`reply.customer_id` in `ctx.customer_id`, and appends both sides to `ctx.history`. Engines are
synchronous and use the ORM; async callers wrap them (`database_sync_to_async`).

Engines write no call records: what the dialog learns about the call (the customer, tool calls,
a transfer, shared facts) goes to `ctx.recorder` (agents/recorder.py), which the owner of the call
implements. Without one, nothing is recorded.

Which engine runs is `settings.DIALOG_ENGINE`: a dotted path to an engine class or to a function
returning an engine, imported once per process (agents/registry.py). The default,
`agents.registry.default_dialog_engine`, is the deterministic engine, or with `LLM_BASE_URL` set
the LLM engine with the deterministic one as its fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from agents.models import AgentConfig
from agents.recorder import CallRecorder

logger = logging.getLogger(__name__)


@dataclass
class CallContext:
    agent: AgentConfig
    call_id: int | None = None  # the Call's pk, to link rows made during the call (tickets, bookings)
    caller_number: str = ""  # caller ID (E.164 or raw), looked up before the greeting
    customer_id: int | None = None  # identified customer, if any
    direction: str = "inbound"  # "outbound" when the agent placed the call
    # Whoever placed an outbound call may pass context (driver name, load number): the flow
    # reads it as {context.<name>}. Strings only; never private unless the placer put it there.
    variables: dict[str, str] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)  # (speaker "caller"/"agent", text)
    state: dict = field(default_factory=dict)  # JSON-serializable: flow step, slots, verification attempts…
    recorder: CallRecorder = field(default_factory=CallRecorder)  # where the dialog reports what happened

    def remember(self, reply: DialogReply, *, caller_text: str | None = None) -> None:
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
