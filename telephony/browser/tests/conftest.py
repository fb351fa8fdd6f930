import random

import pytest
from channels.testing import WebsocketCommunicator

from agents.tests.factories import AgentConfigFactory
from telephony.models import Route

SHOP = "https://shop.example"


@pytest.fixture
def agent(db):
    return AgentConfigFactory(name="Support", slug="support", greeting="Hello, this is support.")


@pytest.fixture
def route(agent):
    return Route.objects.create(
        kind=Route.Kind.WIDGET_KEY, address="test-key", agent=agent, allowed_origins=f"{SHOP}\nhttp://localhost:8123"
    )


def random_ip() -> str:
    return "10.{}.{}.{}".format(*(random.randrange(256) for _ in range(3)))


def communicator(path: str = "/ws/voice/test-key/", *, origin: str | None = SHOP, ip: str | None = None):
    """A WebsocketCommunicator on the full ASGI stack, from a random client IP so the per-IP
    connection budget of one test (or run) never spills into another: the cache is shared Redis."""
    from voicecrm.asgi import application

    headers = [(b"origin", origin.encode())] if origin else []
    comm = WebsocketCommunicator(application, path, headers=headers)
    # The scope dict is read by the application when it first runs, after this line.
    comm.scope["client"] = (ip or random_ip(), 50000)
    return comm
