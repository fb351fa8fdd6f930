import pytest

from calls.models import Call, CallTranscript, Turn
from calls.postcall.conversation import conversation_for

pytestmark = pytest.mark.django_db


def make_call(*, caller_typed: str, recorded: list[dict]) -> Call:
    call = Call.objects.create(channel=Call.Channel.BROWSER, status=Call.Status.COMPLETED)
    Turn.objects.create(call=call, index=0, speaker="agent", text="How can I help?")
    Turn.objects.create(call=call, index=1, speaker="caller", text=caller_typed)
    CallTranscript.objects.create(call=call, model="base", beam_size=5, segments=recorded,
                                  text=" ".join(s["text"] for s in recorded))
    return call


def test_the_recording_is_preferred_when_the_caller_spoke():
    call = make_call(caller_typed="what is my balance", recorded=[
        {"speaker": "agent", "text": "How can I help?", "start": 0.0},
        {"speaker": "caller", "text": "What's my balance?", "start": 2.0},
    ])
    conversation = conversation_for(call)
    assert conversation.source == "recording" and conversation.text_of("caller") == "What's my balance?"


def test_typed_caller_turns_are_used_when_the_recording_has_only_the_agent():
    call = make_call(caller_typed="what is my balance", recorded=[
        {"speaker": "agent", "text": "How can I help?", "start": 0.0},
    ])
    conversation = conversation_for(call)
    assert conversation.source == "live" and conversation.text_of("caller") == "what is my balance"
