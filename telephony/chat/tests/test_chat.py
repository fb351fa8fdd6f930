"""The text channel: the WebSocket consumer, the chat page, and `manage.py chat`."""

import io

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.urls import reverse

from agents.tests.factories import AgentConfigFactory, CustomerFactory
from calls.models import Call, Turn
from telephony.chat.routing import websocket_urlpatterns

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@pytest.fixture
def staff(django_user_model):
    # transaction=True tests flush the migrated role groups, so not `sam`: a plain staff member.
    return django_user_model.objects.create_user("sue", "sue@example.com", "sue-password-123", is_staff=True)


async def connect(user, path="/ws/chat/support/"):
    communicator = WebsocketCommunicator(application, path)
    if user is not None:
        await database_sync_to_async(_login)(communicator, user)
    return communicator, await communicator.connect()


def _login(communicator, user):
    # The session cookie a signed-in browser would send.
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    communicator.scope["headers"] = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode())]


@pytest.mark.django_db(transaction=True)
async def test_staff_chat_with_an_agent_is_stored_as_a_text_call(staff):
    await database_sync_to_async(AgentConfigFactory)(slug="support", greeting="Hi, support here.")
    await database_sync_to_async(CustomerFactory)(account_number="64001", first_name="Ada")
    communicator, (connected, _) = await connect(staff)
    assert connected
    greeting = await communicator.receive_json_from(timeout=5)
    assert greeting["type"] == "reply" and greeting["sentences"] == ["Hi, support here."]
    await communicator.send_json_to({"type": "message", "text": "what's my balance"})
    reply = await communicator.receive_json_from(timeout=5)
    assert "account number" in reply["text"] and reply["intent"] == "billing_balance"
    await communicator.send_json_to({"type": "dtmf", "digits": "64001"})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["tool_calls"][0]["name"] == "find_customer" and reply["tool_calls"][0]["ok"]
    await communicator.send_json_to({"type": "sing"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    await communicator.send_json_to({"type": "message", "text": "can I talk to a person"})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["action"] == "transfer"
    assert (await communicator.receive_output(timeout=5))["type"] == "websocket.close"

    call = await database_sync_to_async(Call.objects.select_related("customer").get)()
    assert call.channel == "text" and call.status == "completed" and call.end_reason == "caller_request"
    assert call.customer.account_number == "64001"
    transfers = await database_sync_to_async(lambda: list(call.events.filter(kind="transfer").values_list("payload", flat=True)))()
    assert transfers == [{"target": "+14155550100", "reason": "caller_request"}]  # logged once, by the dialog's recorder
    turns = await database_sync_to_async(lambda: list(Turn.objects.filter(call=call).values_list("speaker", "text")))()
    assert [speaker for speaker, _ in turns] == ["agent", "caller", "agent", "caller", "agent", "caller", "agent"]
    assert turns[1] == ("caller", "what's my balance") and turns[3] == ("caller", "[keys 64001]")


@pytest.mark.django_db(transaction=True)
async def test_hanging_up_finalizes_the_call(staff):
    await database_sync_to_async(AgentConfigFactory)(slug="support")
    communicator, (connected, _) = await connect(staff)
    await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"type": "message", "text": "x" * 20000})
    await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    call = await database_sync_to_async(Call.objects.get)()
    assert call.status == "completed" and call.end_reason == "caller_hangup"
    longest = await database_sync_to_async(lambda: max(len(t) for t in Turn.objects.values_list("text", flat=True)))()
    assert longest <= 5000


@pytest.mark.django_db(transaction=True)
async def test_anonymous_and_non_staff_users_are_refused(django_user_model):
    await database_sync_to_async(AgentConfigFactory)(slug="support")
    communicator, (connected, code) = await connect(None)
    assert not connected and code == 4403
    customer_user = await database_sync_to_async(django_user_model.objects.create_user)("eve", "eve@example.com", "pw-eve-12345")
    communicator, (connected, code) = await connect(customer_user)
    assert not connected and code == 4403
    assert not await database_sync_to_async(Call.objects.exists)()


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_or_inactive_agent_is_refused(staff):
    await database_sync_to_async(AgentConfigFactory)(slug="old", active=False)
    for path in ("/ws/chat/nobody/", "/ws/chat/old/"):
        communicator, (connected, code) = await connect(staff, path)
        assert not connected and code == 4404


@pytest.mark.django_db
def test_the_chat_pages_are_for_staff(client, sam):
    agent = AgentConfigFactory(slug="support", name="Customer support")
    assert client.get(reverse("agents:chat", args=["support"])).status_code == 302
    client.force_login(sam)
    listing = client.get(reverse("agents:list"))
    assert listing.status_code == 200 and b"Customer support" in listing.content
    page = client.get(reverse("agents:chat", args=["support"]) + "?caller=%2B14155550100")
    assert page.status_code == 200 and b"/ws/chat/support/" in page.content and b"+14155550100" in page.content
    assert client.get(reverse("agents:chat", args=["nobody"])).status_code == 404
    assert agent.pk


@pytest.mark.django_db
def test_manage_py_chat_runs_a_conversation_on_stdin(monkeypatch):
    AgentConfigFactory(slug="support", greeting="Hi, support here.", closing="Bye now.")
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n#0\n"))
    out = io.StringIO()
    call_command("chat", agent="support", show_tools=True, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "agent> Hi, support here."
    assert any(line.startswith("  [transfer_to_human ok") for line in lines)
    assert lines[-1] == "[call ended: transfer caller_request]"
    call = Call.objects.get()
    assert call.channel == "text" and call.turns.count() == 5 and call.status == "completed"


@pytest.mark.django_db
def test_manage_py_chat_refuses_an_unknown_agent():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No active agent"):
        call_command("chat", agent="nobody", stdout=io.StringIO())
