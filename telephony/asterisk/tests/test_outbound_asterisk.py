"""An outbound call on Asterisk from end to end, through the product's own outbound calling:
placed, dialed through ARI, not answered (the dial context's h extension says so through
FastAGI), redialed when due, answered by a machine."""

from __future__ import annotations

import datetime as dt

import pytest

from calls.models import Call
from telephony.asterisk.tests.fastagi_live import *  # noqa: F403 - the fixtures
from telephony.asterisk.tests.pbx import FakeChannel, agi_environment
from telephony.outbound import outbound_call_place, outbound_dial, outbound_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("queued_pipeline")]


def dial_half_hangs_up(fastagi, call: Call, dial_status: str, cause: str) -> None:
    """The h extension of voicecrm-dial: the Local channel's other half, with the variables ARI set."""
    variables = {"VOICECRM_CALL_UUID": str(call.public_id), "VOICECRM_RING_SECONDS": "30",
                 "DIALSTATUS": dial_status, "HANGUPCAUSE": cause}
    FakeChannel(fastagi.port, dead=True, variables=variables).run(agi_environment(
        port=fastagi.port, script="hangup", context="voicecrm-dial", extension="h", uniqueid="1733033000.2",
        channel=f"Local/{call.to_number}@voicecrm-dial-00000003;2"))


def test_an_unanswered_attempt_is_reported_and_redialed_and_a_machine_is_noted(fastagi, ari, extension, agent):
    first = outbound_call_place(agent=agent, to="+14155550123", variables={"driver_name": "Sam"})
    assert outbound_dial(call_id=first.pk) == "dialed"
    first.refresh_from_db()
    assert first.provider_call_id == str(first.public_id) == ari.requests[-1]["query"]["channelId"]
    assert ari.requests[-1]["query"]["callerId"] == "7000"  # the agent's extension is its line

    dial_half_hangs_up(fastagi, first, "NOANSWER", "19")

    first.refresh_from_db()
    assert (first.status, first.end_reason) == (Call.Status.NO_ANSWER, "NOANSWER/19")
    assert first.retry_due_at is not None
    outbound_sweep(now=first.retry_due_at + dt.timedelta(seconds=1))
    second = Call.objects.get(retry_of=first)
    assert (second.attempt, second.variables) == (2, {"driver_name": "Sam"})
    assert outbound_dial(call_id=second.pk) == "dialed"
    assert ari.requests[-1]["query"]["channelId"] == str(second.public_id)  # a new channel, not a 409

    # Answered this time, by a machine: the outbound context's amd step.
    channel = FakeChannel(fastagi.port, variables={"VOICECRM_CALL_UUID": str(second.public_id),
                                                   "AMDSTATUS": "MACHINE", "AMDCAUSE": "INITIALSILENCE-2500-2500"})
    channel.run(agi_environment(port=fastagi.port, script="amd", context="voicecrm-outbound", extension="s",
                                uniqueid=str(second.public_id)))
    second.refresh_from_db()
    assert second.answered_by == "machine" and channel.variables["VOICECRM_ANSWERED_BY"] == "machine"
    assert second.status == Call.Status.QUEUED  # in progress once its audio connects, not before
    assert second.retry_due_at is None
