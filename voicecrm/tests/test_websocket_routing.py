"""Websocket paths no route knows are refused cleanly."""

import logging

import pytest
from channels.testing import WebsocketCommunicator

from voicecrm.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/ws/nothing/", "/", "/ws/voice/", "/admin/", "/ws/chat/"])
async def test_an_unknown_path_is_closed_with_4404_and_no_traceback(path, caplog):
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")])
    with caplog.at_level(logging.INFO):
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4404}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    await communicator.wait()
