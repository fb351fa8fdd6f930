"""The text channel: the WebSocket consumer, the chat page, and `manage.py chat`."""

import io
import socket

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from agents.tests.factories import AgentConfigFactory, CustomerFactory
from calls.models import Call, Turn
from calls.session import live
from core.roles import roles_sync
from telephony.chat.routing import websocket_urlpatterns

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
# What a browser on the chat page sends: the page's own origin, and the host it asked for.
SAME_ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


def _role_user(django_user_model, username: str, role: str | None):
    # transaction=True tests flush the migrated role groups and permissions: sync them again.
    roles_sync(apps)
    user = django_user_model.objects.create_user(username, f"{username}@example.com", f"{username}-password-123", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def staff(django_user_model):
    """An Agent: may chat with agents whose tools need only what the Agent role holds."""
    return _role_user(django_user_model, "sue", "Agent")


@pytest.fixture
def supervisor(django_user_model):
    return _role_user(django_user_model, "sol", "Supervisor")


async def connect(user, path="/ws/chat/support/", headers=SAME_ORIGIN):
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
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
    communicator.scope["headers"].append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode()))


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
def test_the_chat_pages_need_the_chat_permission_and_the_tools_permissions(client, bob, charlie, django_user_model):
    AgentConfigFactory(slug="support", name="Customer support")
    roleless = django_user_model.objects.create_user("rita", "rita@example.com", "rita-password-123", is_staff=True)
    for user in (charlie, roleless):
        client.force_login(user)
        assert client.get(reverse("agents:list")).status_code == 403
        assert client.get(reverse("agents:chat", args=["support"])).status_code == 403
    client.force_login(bob)
    page = client.get(reverse("agents:chat", args=["support"]) + "?caller=%2B14155550100")
    # An Agent chats, but as an unknown caller: no caller ID field, and the number is not echoed.
    assert page.status_code == 200 and b'id="caller"' not in page.content and b"+14155550100" not in page.content


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


# --- Who may chat, as whom, and from where (agents/permissions.py, telephony/chat/routing.py) ----


@pytest.mark.django_db(transaction=True)
async def test_viewers_and_staff_without_a_role_are_refused(django_user_model):
    await database_sync_to_async(AgentConfigFactory)(slug="support")
    for username, role in (("vic", "Viewer"), ("rita", None)):
        user = await database_sync_to_async(_role_user)(django_user_model, username, role)
        communicator, (connected, code) = await connect(user)
        assert not connected and code == 4403
    assert not await database_sync_to_async(Call.objects.exists)()


@pytest.mark.django_db(transaction=True)
async def test_the_agents_tools_need_their_model_permissions(django_user_model):
    from django.contrib.auth.models import Permission

    await database_sync_to_async(AgentConfigFactory)(slug="support", enabled_tools=["find_customer", "create_ticket"])
    user = await database_sync_to_async(_role_user)(django_user_model, "cora", None)

    def grant(*codenames):
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))

    await database_sync_to_async(grant)("chat_with_agent", "view_customer")
    user = await database_sync_to_async(django_user_model.objects.get)(pk=user.pk)  # no stale permission cache
    communicator, (connected, code) = await connect(user)
    assert not connected and code == 4403  # create_ticket needs tickets.add_ticket
    await database_sync_to_async(grant)("add_ticket")
    user = await database_sync_to_async(django_user_model.objects.get)(pk=user.pk)
    communicator, (connected, _) = await connect(user)
    assert connected
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_only_supervisors_may_pose_as_a_caller_number(staff, supervisor):
    await database_sync_to_async(AgentConfigFactory)(slug="support")
    communicator, (connected, code) = await connect(staff, "/ws/chat/support/?caller=%2B14155550123")
    assert not connected and code == 4403
    communicator, (connected, _) = await connect(staff)
    assert connected
    await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    communicator, (connected, _) = await connect(supervisor, "/ws/chat/support/?caller=%2B14155550123")
    assert connected
    await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    numbers = await database_sync_to_async(lambda: sorted(Call.objects.values_list("from_number", flat=True)))()
    assert numbers == ["", "+14155550123"]


@pytest.mark.django_db(transaction=True)
async def test_the_full_origin_must_match_not_only_the_host(staff, settings):
    from voicecrm.asgi import application as full_application

    await database_sync_to_async(AgentConfigFactory)(slug="support")

    async def connects(origin: bytes, host: bytes = b"localhost:8000", app=full_application) -> bool:
        communicator = WebsocketCommunicator(app, "/ws/chat/support/", headers=[(b"origin", origin), (b"host", host)])
        await database_sync_to_async(_login)(communicator, staff)
        connected, _ = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected

    assert await connects(b"http://localhost:8000")
    # Same host, another port (another app on the machine): channels' host check let it through.
    assert not await connects(b"http://localhost:8001")
    assert not await connects(b"https://localhost:8000")  # another scheme is another origin
    assert not await connects(b"http://evil.example", host=b"evil.example")  # not in ALLOWED_HOSTS
    # Behind a TLS proxy that does not pass the scheme on, the socket looks like plain ws://: the
    # public origin must then be listed, as Django's CSRF check also requires for form posts.
    # (The chat's own routes here: asgi.py's host check read ALLOWED_HOSTS when it was imported.)
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "crm.example.com", ".corp.example"]
    assert not await connects(b"https://crm.example.com", host=b"crm.example.com", app=application)
    settings.CSRF_TRUSTED_ORIGINS = ["https://crm.example.com", "https://*.corp.example"]
    assert await connects(b"https://crm.example.com", host=b"crm.example.com", app=application)
    assert await connects(b"https://desk.corp.example", host=b"desk.corp.example", app=application)
    assert not await connects(b"https://desk.corp.example:8443", host=b"desk.corp.example", app=application)


@pytest.mark.django_db(transaction=True)
async def test_a_chat_goes_on_and_is_finalized_while_redis_is_down(staff, settings):
    with socket.socket() as probe:  # a port nothing listens on: Redis is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]}}}
    await database_sync_to_async(AgentConfigFactory)(slug="support", greeting="Hi, support here.")
    communicator, (connected, _) = await connect(staff)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["sentences"] == ["Hi, support here."]
    await communicator.send_json_to({"type": "message", "text": "what are your opening hours"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "reply"
    await communicator.disconnect()
    call = await database_sync_to_async(Call.objects.get)()
    assert call.status == "completed" and call.end_reason == "caller_hangup"


@pytest.fixture
def fresh_live_calls():
    live._reset_for_tests()
    yield
    live._reset_for_tests()


@pytest.mark.django_db(transaction=True)
async def test_on_shutdown_a_live_chat_says_goodbye_and_is_finalized_and_new_chats_are_refused(staff, fresh_live_calls):
    await database_sync_to_async(AgentConfigFactory)(slug="support")
    communicator, (connected, _) = await connect(staff)
    assert connected and live.count() == 1
    await communicator.receive_json_from(timeout=5)

    assert await live.drain(5) == 0
    goodbye = await communicator.receive_json_from(timeout=5)
    assert goodbye["action"] == "end_call" and goodbye["action_reason"] == "server_shutdown"
    assert (await communicator.receive_output(timeout=5)) == {"type": "websocket.close", "code": 1001}
    call = await database_sync_to_async(Call.objects.get)()
    assert call.status == "completed" and call.end_reason == "server_shutdown"

    later, (connected, code) = await connect(staff)
    assert not connected and code == 4503
