"""Answering-machine detection: who answered is stored once; a machine gets the agent's voicemail
message through the live stream (a channel-layer group message), or through Twilio's REST API
when no stream is listening or the channel layer cannot be reached."""

import xml.etree.ElementTree as ET

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_connect, call_finalize, call_start
from calls.tests.postcall.harness import RedisServer, free_port
from telephony.twilio.tests.signing import fixture, post_signed

pytestmark = [pytest.mark.django_db]

AMD = "/telephony/twilio/amd/"
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
MESSAGE = "Hi {context.driver_name}, this is dispatch about load {context.load_number}. {context.nope}Call us back."
SAID = "Hi Sam, this is dispatch about load L-7. Call us back."


@pytest.fixture(autouse=True)
def queued_pipeline():
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    return get_channel_layer()


@pytest.fixture
def call(fake_twilio):
    """An outbound call Twilio has answered (it knows the CallSid), not yet served by a session."""
    call_sid = fake_twilio.add_call(to="+14155550123", direction="outbound-api")
    agent = AgentConfigFactory(voicemail_message=MESSAGE)
    call = call_start(channel=Call.Channel.TWILIO, agent=agent, direction=Call.Direction.OUTBOUND,
                      from_number="+14155550100", to_number="+14155550123", provider_call_id=call_sid, answered=False)
    Call.objects.filter(pk=call.pk).update(variables={"driver_name": "Sam", "load_number": "L-7"})
    call.refresh_from_db()
    return call


def listen(layer, call: Call) -> str:
    """A channel in the call's group, as the Media Streams consumer joins it."""
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"twilio_call_{call.provider_call_id}", channel)
    return channel


def pending(layer, channel: str) -> int:
    """Messages waiting for `channel` in the in-memory layer (its queue exists once sent to)."""
    queue = layer.channels.get(channel)
    return queue.qsize() if queue is not None else 0


def amd(client, call: Call, answered_by: str):
    params = {**fixture("amd_callbacks")[answered_by], "CallSid": call.provider_call_id}
    return post_signed(client, f"{AMD}?call={call.public_id}", params)


def said_by_rest(fake_twilio) -> list[list[str]]:
    """The TwiML of every REST update, as [verb, …] with the Say text."""
    updates = []
    for request in fake_twilio.requests:
        if request.method == "POST" and request.path.endswith(".json") and "/Calls/" in request.path:
            root = ET.fromstring(request.param("Twiml"))
            updates.append([child.tag if child.tag != "Say" else f"Say:{child.text}" for child in root])
    return updates


def test_a_machine_on_a_live_call_gets_the_message_through_the_stream(client, call, fake_twilio, in_memory_layer):
    call_connect(call_id=call.pk)  # the stream started: a session serves the call
    channel = listen(in_memory_layer, call)
    response = amd(client, call, "machine_end_beep")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert async_to_sync(in_memory_layer.receive)(channel) == {"type": "twilio.voicemail", "message": SAID}
    call.refresh_from_db()
    assert call.answered_by == "machine_end_beep"
    event = CallEvent.objects.get(call=call, name="answered_by")
    assert event.payload == {"answered_by": "machine_end_beep", "detection_ms": 11520}
    assert fake_twilio.requests == []  # the session says it; Twilio is not asked

    # Twilio retries the callback: stored and acted on once.
    assert amd(client, call, "machine_end_beep").status_code == 200
    assert pending(in_memory_layer, channel) == 0
    assert CallEvent.objects.filter(call=call, name="answered_by").count() == 1


def test_without_a_listening_stream_the_message_is_left_through_the_rest_api(client, call, fake_twilio,
                                                                             in_memory_layer):
    channel = listen(in_memory_layer, call)  # nobody serves the call: it was never connected
    assert amd(client, call, "machine_end_silence").status_code == 200
    assert said_by_rest(fake_twilio) == [[f"Say:{SAID}", "Hangup"]]
    request = fake_twilio.requests[0]
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Calls/{call.provider_call_id}.json"
    assert pending(in_memory_layer, channel) == 0
    assert CallEvent.objects.get(call=call, name="voicemail_left").payload["via"] == "rest"


def test_with_the_channel_layer_unreachable_the_rest_api_leaves_the_message(client, call, fake_twilio, settings):
    call_connect(call_id=call.pk)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]}}}
    assert amd(client, call, "machine_end_other").status_code == 200
    assert said_by_rest(fake_twilio) == [[f"Say:{SAID}", "Hangup"]]


def test_the_message_crosses_a_real_redis_channel_layer(client, call, fake_twilio, settings, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                               "CONFIG": {"hosts": [server.url]}}}
        layer = get_channel_layer()
        call_connect(call_id=call.pk)
        channel = listen(layer, call)
        assert amd(client, call, "machine_end_beep").status_code == 200
        assert async_to_sync(layer.receive)(channel) == {"type": "twilio.voicemail", "message": SAID}
        assert fake_twilio.requests == []
    finally:
        server.stop()


def test_a_fax_is_hung_up_on_without_the_message(client, call, fake_twilio, in_memory_layer):
    call_connect(call_id=call.pk)
    channel = listen(in_memory_layer, call)
    assert amd(client, call, "fax").status_code == 200
    assert async_to_sync(in_memory_layer.receive)(channel) == {"type": "twilio.voicemail", "message": ""}


def test_an_agent_without_a_voicemail_message_just_hangs_up(client, call, fake_twilio, in_memory_layer):
    type(call.agent).objects.filter(pk=call.agent_id).update(voicemail_message="")
    assert amd(client, call, "machine_end_beep").status_code == 200
    assert said_by_rest(fake_twilio) == [["Hangup"]]


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_a_person_or_unknown_is_stored_and_the_call_carries_on(client, call, fake_twilio, in_memory_layer,
                                                               answered_by):
    call_connect(call_id=call.pk)
    channel = listen(in_memory_layer, call)
    assert amd(client, call, answered_by).status_code == 200
    call.refresh_from_db()
    assert (call.answered_by, call.status) == (answered_by, Call.Status.IN_PROGRESS)
    assert fake_twilio.requests == [] and pending(in_memory_layer, channel) == 0


def test_a_call_that_already_ended_is_left_alone(client, call, fake_twilio, in_memory_layer):
    # After a transfer the caller talks with a person: a late verdict must not hang up on them.
    call_connect(call_id=call.pk)
    call_finalize(call_id=call.pk, end_reason="transfer")
    assert amd(client, call, "machine_end_beep").status_code == 200
    call.refresh_from_db()
    assert call.answered_by == "machine_end_beep" and fake_twilio.requests == []


def test_a_call_twilio_already_ended_is_not_an_error(client, call, fake_twilio, in_memory_layer):
    fake_twilio.end_call(call.provider_call_id)  # hung up on Twilio's side before the verdict came
    assert amd(client, call, "machine_end_beep").status_code == 200
    assert fake_twilio.requests[0].param("Twiml")  # tried, and told 21220
    assert CallEvent.objects.filter(call=call, name="voicemail_too_late").exists()


def test_a_rest_failure_is_logged_on_the_call_not_raised(client, call, fake_twilio, in_memory_layer):
    fake_twilio.fail_next(500, 20500, "Internal Server Error")
    assert amd(client, call, "machine_end_beep").status_code == 200
    event = CallEvent.objects.get(call=call, name="voicemail_failed")
    assert event.payload["permanent"] is False and "HTTP 500" in event.payload["message"]


def test_an_unknown_call_or_garbage_verdict(client, call, fake_twilio, in_memory_layer):
    params = {**fixture("amd_callbacks")["machine_end_beep"], "CallSid": "CA" + "1" * 32}
    assert post_signed(client, AMD, params).status_code == 404
    params = {**fixture("amd_callbacks")["machine_end_beep"], "CallSid": call.provider_call_id, "AnsweredBy": "robot"}
    assert post_signed(client, f"{AMD}?call={call.public_id}", params).status_code == 400
    call.refresh_from_db()
    assert call.answered_by == "" and fake_twilio.requests == []
