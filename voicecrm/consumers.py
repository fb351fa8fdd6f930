"""The end of the websocket routing: a path no route knows is closed with 4404, not a 500."""

import logging

from channels.generic.websocket import AsyncWebsocketConsumer

logger = logging.getLogger(__name__)


class UnknownPathConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = None  # nothing to receive; no Redis connection for a refusal

    async def connect(self) -> None:
        logger.info("websocket to an unknown path %s refused", self.scope.get("path", "")[:200])
        # Accepted only to say why: a close code before acceptance would read as a bare 403.
        await self.accept()
        await self.close(code=4404)
