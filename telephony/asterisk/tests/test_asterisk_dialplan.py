"""An inbound call through the whole dialplan of docs/asterisk.md, every server real: the FastAGI
`route` step, the call's audio on the AudioSocket server (real voice session, Piper), the agent
handing over, the `after` step giving the dialplan the transfer target, and the `h` extension's
`hangup` step recording how the transfer went."""

from __future__ import annotations

import asyncio

import pytest

from agents.engine import CallContext, DialogEngine, DialogReply
from calls.models import Call, CallEvent
from telephony.asterisk.tests.fastagi_live import LiveFastAgi
from telephony.asterisk.tests.pbx import FakeChannel, agi_environment

from .audiosocket_support import (  # noqa: F401 - the *_fixture names are fixtures
    EXTENSION,
    agent_fixture,
    queued_pipeline_fixture,
    route_fixture,
    serve,
    warm_speech_fixture,
)
from .fake_asterisk import FakeAsterisk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.usefixtures("warm_speech", "queued_pipeline")]


class HandsOver(DialogEngine):
    """Greets; hands the caller over when they press 0."""

    def start(self, ctx: CallContext) -> DialogReply:
        return DialogReply(["Thanks for calling. Press zero for a person."], intent="greeting")

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        if dtmf == "0":
            return DialogReply(["Putting you through now."], action="transfer", action_reason="caller_asked")
        return DialogReply([])


@pytest.fixture
def fastagi():
    live = LiveFastAgi().start()
    yield live
    live.stop()


def test_an_inbound_call_is_routed_answered_handed_over_and_transferred(agent, route, fastagi):
    unique_id = "1733050000.17"
    routed = FakeChannel(fastagi.port).run(agi_environment(
        port=fastagi.port, uniqueid=unique_id, callerid="+14155550111", extension=EXTENSION, dnid=EXTENSION))
    assert routed.variables["VOICECRM_ROUTE"] == "ok"
    call = Call.objects.get(provider_call_id=unique_id)
    assert str(call.public_id) == routed.variables["VOICECRM_CALL_UUID"] and call.status == Call.Status.QUEUED

    async def dialplan(server):
        # Answer(), then AudioSocket(${VOICECRM_CALL_UUID},…): the agent greets, the caller presses 0.
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        greeted = await line.until_audible()
        await line.until_quiet(after=greeted)
        line.press("0")
        await line.until_closed()
        # AudioSocket() returned: the next priority is AGI(agi://…/after).
        after = FakeChannel(fastagi.port, variables=dict(routed.variables))
        await asyncio.to_thread(after.run, agi_environment(port=fastagi.port, script="after", uniqueid=unique_id))
        return line, after

    line, after = serve(dialplan, engine=HandsOver())
    line.check()
    assert line.hangup_at is not None  # the server hung up for the dialplan
    assert after.variables["VOICECRM_TRANSFER"] == agent.transfer_target == "+14155550100"

    # Goto(voicecrm-transfer,…) dialed it and the person answered; later the h extension runs.
    hangup = FakeChannel(fastagi.port, dead=True, variables={**after.variables, "DIALSTATUS": "ANSWER", "HANGUPCAUSE": "16"})
    hangup.run(agi_environment(port=fastagi.port, script="hangup", context="voicecrm-transfer", extension="h",
                               uniqueid=unique_id))

    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "transfer")
    assert call.answered_at is not None  # answered when its audio connected, not at routing
    transfers = list(CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).values_list("name", flat=True))
    assert transfers == ["caller_asked", "asterisk_dial", "asterisk_transfer_answer"]
