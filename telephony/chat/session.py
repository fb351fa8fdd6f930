"""The text channel: a conversation with an agent in text, stored as a Call (channel=text) with Turns.

Used by the chat WebSocket consumer and by `manage.py chat`. Synchronous ORM code; the consumer
wraps each method in `database_sync_to_async`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agents.engine import CallContext, DialogEngine, DialogReply
from agents.models import AgentConfig
from agents.registry import get_dialog_engine
from calls.models import Call
from calls.recorder import CallRecorderService
from calls.services import call_finalize, call_start, turn_record
from calls.session import live

# A chat message longer than this is cut before it reaches the engine and the database.
MAX_MESSAGE_CHARS = 5000


@dataclass
class TextSession:
    call_id: int
    ctx: CallContext
    engine: DialogEngine
    ended: bool = False

    def start(self) -> DialogReply:
        return self._reply(lambda: self.engine.start(self.ctx), caller_text=None)

    def respond(self, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        if self.ended:
            raise ValueError("the conversation has ended")
        text = (text or "")[:MAX_MESSAGE_CHARS]
        turn_record(call=Call(pk=self.call_id), speaker="caller", text=text or (f"[keys {dtmf}]" if dtmf else ""))
        return self._reply(lambda: self.engine.respond(self.ctx, text=text, dtmf=dtmf), caller_text=text or dtmf or "")

    def _reply(self, produce, *, caller_text: str | None) -> DialogReply:
        started = time.perf_counter()
        reply = produce()
        agent_ms = round((time.perf_counter() - started) * 1000)
        turn_record(call=Call(pk=self.call_id), speaker="agent", text=reply.text, intent=reply.intent[:64], agent_ms=agent_ms)
        self.ctx.remember(reply, caller_text=caller_text)
        if reply.action:
            self.close(end_reason=reply.action_reason or reply.action, intent=self.ctx.state.get("intent", reply.intent))
        return reply

    def close(self, *, end_reason: str = "caller_hangup", intent: str = "") -> None:
        """End the call once; later calls do nothing."""
        if self.ended:
            return
        self.ended = True
        live.heartbeat_remove(self.call_id)
        call_finalize(call_id=self.call_id, end_reason=end_reason, intent=intent or self.ctx.state.get("intent", ""))


def text_session_open(*, agent_slug: str, caller_number: str = "", engine: DialogEngine | None = None) -> TextSession | None:
    """Start a text conversation with an active agent; None when there is no such agent."""
    agent = AgentConfig.objects.filter(slug=agent_slug, active=True).first()
    if agent is None:
        return None
    call = call_start(channel=Call.Channel.TEXT, agent=agent, from_number=caller_number[:64])
    # Stamped by this process while the chat is open (a chat may sit idle between messages);
    # if the process dies, the sweep finalizes it (calls/sweeps.py).
    live.heartbeat_add(call.pk)
    ctx = CallContext(agent=agent, call_id=call.pk, caller_number=caller_number[:64], recorder=CallRecorderService(call))
    return TextSession(call_id=call.pk, ctx=ctx, engine=engine or get_dialog_engine())


def reply_payload(reply: DialogReply) -> dict:
    """What the chat page is sent for one reply (JSON)."""
    return {
        "type": "reply", "sentences": reply.sentences, "text": reply.text, "intent": reply.intent,
        "action": reply.action, "action_reason": reply.action_reason,
        "tool_calls": [{"name": c.name, "arguments": c.arguments, "ok": c.ok, "result": c.result} for c in reply.tool_calls],
    }
