"""Text chat with an agent over a WebSocket, for signed-in staff: /ws/chat/<agent-slug>/.

Client → server: {"type": "message", "text": "..."} or {"type": "dtmf", "digits": "123"}.
Server → client: {"type": "reply", "sentences": [...], "text", "intent", "tool_calls", "action",
"action_reason"}; {"type": "error", "message"}; the socket closes after a reply with an action.
Close codes: 4403 not signed in as staff, or lacking the permissions to chat with this agent
(agents/permissions.py), or `?caller=` without the permission to pose as a caller; 4404 no such
active agent; 4503 the process is at its call cap or shutting down (calls/session/live.py). On
shutdown a live chat gets a goodbye reply (action "end_call", reason "server_shutdown"), its call
is finalized, and the socket closes with 1001. The origin is checked before this consumer runs (routing.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from agents.models import AgentConfig
from agents.permissions import agent_chat_as_caller_allowed, agent_chat_missing_permissions
from calls.session import VoiceSession, live
from telephony.chat.session import (
    MAX_MESSAGE_CHARS,
    TextSession,
    reply_payload,
    text_session_open,
)

logger = logging.getLogger(__name__)


def chat_refusal(*, user, agent_slug: str, caller: str) -> int | None:
    """The close code refusing this chat, or None when `user` may have it."""
    if user is None or not user.is_authenticated or not user.is_staff:
        return 4403
    agent = AgentConfig.objects.filter(slug=agent_slug, active=True).first()
    if agent is None:
        return 4404
    if agent_chat_missing_permissions(user=user, agent=agent):
        return 4403
    if caller and not agent_chat_as_caller_allowed(user=user):
        return 4403
    return None


class ChatConsumer(AsyncJsonWebsocketConsumer):
    # The chat talks to its own socket only. Without a channel layer no socket holds a Redis
    # receive loop, so a Redis outage cannot kill a conversation or leave its call in progress.
    channel_layer_alias = None
    session: TextSession | None = None

    @classmethod
    async def encode_json(cls, content) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        caller = (query.get("caller") or [""])[0].strip()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        refusal = await database_sync_to_async(chat_refusal)(user=self.scope.get("user"), agent_slug=slug, caller=caller)
        if refusal is not None:
            await self.close(code=refusal)
            return
        if not live.admit():
            await self.close(code=4503)
            return
        live.register(self)  # at once, so two sockets cannot take the last slot
        self.session = await database_sync_to_async(text_session_open)(agent_slug=slug, caller_number=caller)
        if self.session is None:
            live.unregister(self)
            await self.close(code=4404)
            return
        await self.accept()
        reply = await database_sync_to_async(self.session.start)()
        await self.send_json({**reply_payload(reply), "call_id": self.session.call_id})

    async def receive_json(self, content, **kwargs) -> None:
        if self.session is None or self.session.ended:
            await self.send_json({"type": "error", "message": "The conversation has ended."})
            return
        if not isinstance(content, dict) or content.get("type") not in ("message", "dtmf"):
            await self.send_json({"type": "error", "message": 'Send {"type": "message", "text": "..."}.'})
            return
        if content["type"] == "dtmf":
            digits = "".join(c for c in str(content.get("digits", ""))[:32] if c in "0123456789*#")
            reply = await database_sync_to_async(self.session.respond)(dtmf=digits)
        else:
            text = str(content.get("text", ""))[:MAX_MESSAGE_CHARS]
            reply = await database_sync_to_async(self.session.respond)(text=text)
        await self.send_json(reply_payload(reply))
        if reply.action:
            await self.close()

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if text_data is None:
            await self.send_json({"type": "error", "message": "Text frames only."})
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_json({"type": "error", "message": "Frames must be JSON."})
            return
        await self.receive_json(content)

    async def disconnect(self, code) -> None:
        if self.session is not None and not self.session.ended:
            await database_sync_to_async(self.session.close)(end_reason="caller_hangup")
        live.unregister(self)

    def end_politely(self, reason: str = "server_shutdown") -> None:
        """The server is shutting down (live.drain, on the event loop): say goodbye, finalize."""
        asyncio.ensure_future(self._end_politely(reason))

    async def _end_politely(self, reason: str) -> None:
        try:
            if self.session is not None and not self.session.ended:
                goodbye = VoiceSession.SHUTDOWN_GOODBYE
                await self.send_json({"type": "reply", "sentences": [goodbye], "text": goodbye, "intent": "",
                                      "tool_calls": [], "action": "end_call", "action_reason": reason})
                await database_sync_to_async(self.session.close)(end_reason=reason)
                await self.close(code=1001)
        finally:
            live.unregister(self)
