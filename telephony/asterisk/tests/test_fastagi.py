"""The FastAGI steps against a channel that speaks like Asterisk 20: routing an inbound call,
storing what answered an outbound one, handing a transfer to the dialplan, reporting a call
that ended before its audio connected."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from agents.models import AgentConfig
from calls.models import Call, CallEvent
from calls.services import call_connect, call_finalize, call_start, call_transfer_log
from customers.tests.factories import CustomerFactory
from telephony.asterisk.tests.fastagi_live import *  # noqa: F403 - the fixtures
from telephony.asterisk.tests.pbx import FakeChannel, agi_environment
from telephony.models import Route
from tickets.models import Ticket
from tickets.tests.factories import TicketFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("queued_pipeline")]


def route(fastagi, **env) -> FakeChannel:
    return FakeChannel(fastagi.port).run(agi_environment(port=fastagi.port, **env))


# --- route ---------------------------------------------------------------------------------------


def test_a_known_extension_creates_the_call_and_sets_its_variables(fastagi, extension, agent):
    channel = route(fastagi, uniqueid="1733030400.42", callerid="(415) 555-2671", extension="7000")

    call = Call.objects.get()
    assert (call.channel, call.direction, call.provider_call_id) == ("asterisk", "inbound", "1733030400.42")
    assert (call.from_number, call.to_number, call.agent) == ("+14155552671", "7000", agent)
    assert call.status == Call.Status.QUEUED and call.answered_at is None  # answered when its audio connects
    assert channel.variables == {
        "VOICECRM_CALL_UUID": str(call.public_id), "VOICECRM_CUSTOMER": "", "VOICECRM_AGENT": "front-desk",
        "VOICECRM_OPEN_TICKETS": "0", "VOICECRM_ROUTE": "ok",
    }
    assert channel.set_order[-1] == "VOICECRM_ROUTE"  # "ok" only once the rest is set
    assert all(reply == ["200 result=1"] for reply in channel.replies)  # every command was answered, in turn
    assert fastagi.stats["step_route"] == 1


def test_a_caller_id_match_names_the_customer_by_id_and_counts_open_tickets_only(fastagi, extension):
    customer = CustomerFactory(phone="+14155552671", first_name="Grace", last_name="Hopper")
    for _ in range(2):
        TicketFactory(customer=customer)
    closed = TicketFactory(customer=customer)
    Ticket.objects.filter(pk=closed.pk).update(status=Ticket.Status.CLOSED)

    channel = route(fastagi, callerid="+14155552671", calleridname="Grace Hopper")

    assert channel.variables["VOICECRM_CUSTOMER"] == str(customer.pk)
    assert channel.variables["VOICECRM_OPEN_TICKETS"] == "2"
    # The PBX is not a verified caller: nothing private goes into the channel.
    assert not any(word in value for value in channel.variables.values() for word in ("Grace", "Hopper", "42.50"))
    # The voice session identifies the caller itself (and decides whether caller ID verifies).
    assert Call.objects.get().customer is None


def test_a_url_without_a_path_routes_too(fastagi, extension):
    channel = route(fastagi, script="")  # AGI(agi://voicecrm:4573)
    assert channel.variables["VOICECRM_ROUTE"] == "ok"


def test_the_extension_may_come_from_the_agi_argument_or_the_dnid(fastagi, extension):
    route(fastagi, uniqueid="1.1", extension="s", dnid="7000")
    route(fastagi, uniqueid="1.2", extension="s", dnid="unknown", args=("7000",))
    assert sorted(Call.objects.values_list("provider_call_id", "to_number")) == [("1.1", "7000"), ("1.2", "7000")]


def test_caller_id_that_is_not_a_phone_number_is_kept_as_sent_or_dropped(fastagi, extension):
    route(fastagi, uniqueid="2.1", callerid="201")  # an internal extension
    route(fastagi, uniqueid="2.2", callerid="unknown")
    assert dict(Call.objects.values_list("provider_call_id", "from_number")) == {"2.1": "201", "2.2": ""}


@pytest.mark.parametrize("inactive", ["unknown_extension", "route", "agent"])
def test_an_unknown_or_inactive_extension_creates_no_call(fastagi, extension, agent, inactive):
    if inactive == "route":
        Route.objects.filter(pk=extension.pk).update(active=False)
    elif inactive == "agent":
        AgentConfig.objects.filter(pk=agent.pk).update(active=False)
    channel = route(fastagi, extension="7999" if inactive == "unknown_extension" else "7000", dnid="7999")
    assert channel.variables == {"VOICECRM_ROUTE": "unknown"}
    assert not Call.objects.exists()


def test_a_repeated_agi_for_the_same_channel_finds_the_same_call(fastagi, extension):
    first = route(fastagi, uniqueid="1733030400.7")
    second = route(fastagi, uniqueid="1733030400.7")
    assert Call.objects.count() == 1
    assert first.variables == second.variables


def test_the_caller_hanging_up_during_routing_cancels_the_call(fastagi, extension):
    channel = FakeChannel(fastagi.port, hangup_before=1)
    channel.run(agi_environment(port=fastagi.port))

    # HANGUP came before the second reply and was not taken for it: every variable is right.
    assert channel.replies[1] == ["HANGUP", "200 result=1"]
    call = Call.objects.get()
    assert channel.variables["VOICECRM_CALL_UUID"] == str(call.public_id)
    assert channel.variables["VOICECRM_ROUTE"] == "ok"
    assert call.status == Call.Status.CANCELED


def test_a_database_connection_dropped_between_calls_is_replaced(fastagi, extension, caplog):
    route(fastagi, uniqueid="5.1")
    with connection.cursor() as cursor:  # PostgreSQL restarted, or a proxy cut idle connections
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    channel = route(fastagi, uniqueid="5.2")
    assert channel.variables["VOICECRM_ROUTE"] == "ok"
    assert Call.objects.count() == 2
    assert "database connection lost; retrying" in caplog.text


def test_a_refused_command_ends_that_connection_only(fastagi, extension):
    usage = ["520-Invalid command syntax.  Proper usage follows:", " Usage: SET VARIABLE <variablename> <value>",
             "520 End of proper usage."]
    for scripted in (usage, ["510 Invalid or unknown command"], ["511 Command Not Permitted on a dead channel"]):
        channel = FakeChannel(fastagi.port, scripted={0: scripted})
        channel.run(agi_environment(port=fastagi.port, uniqueid="3.1"))
        assert len(channel.commands) == 1  # nothing sent after the refusal

    assert fastagi.stats["refused_command"] == 3
    channel = route(fastagi, uniqueid="3.2")
    assert channel.variables["VOICECRM_ROUTE"] == "ok"


def test_an_unknown_step_sets_nothing_and_the_dialplan_falls_through(fastagi, extension):
    channel = route(fastagi, script="nosuchstep")
    assert channel.commands == [] and not Call.objects.exists()
    assert fastagi.stats["unknown_step"] == 1


# --- amd -----------------------------------------------------------------------------------------


def outbound_call(agent, **fields) -> Call:
    call = call_start(channel=Call.Channel.ASTERISK, agent=agent, direction=Call.Direction.OUTBOUND,
                      from_number="7000", to_number="+14155550123", answered=False)
    Call.objects.filter(pk=call.pk).update(provider_call_id=str(call.public_id), **fields)
    call.refresh_from_db()
    return call


@pytest.mark.parametrize(("amd_status", "answered_by"), [("MACHINE", "machine"), ("HUMAN", "human"),
                                                          ("NOTSURE", "unknown")])
def test_amd_stores_what_answered_an_outbound_call(fastagi, agent, amd_status, answered_by):
    call = outbound_call(agent)
    variables = {"VOICECRM_CALL_UUID": str(call.public_id), "AMDSTATUS": amd_status,
                 "AMDCAUSE": "LONGGREETING-2000-1500"}
    for _ in range(2):  # a retried step changes nothing more
        channel = FakeChannel(fastagi.port, variables=dict(variables))
        channel.run(agi_environment(port=fastagi.port, script="amd", uniqueid="1733030500.3",
                                    context="voicecrm-outbound", extension="s"))
        assert channel.variables["VOICECRM_ANSWERED_BY"] == answered_by

    call.refresh_from_db()
    assert call.answered_by == answered_by
    event = CallEvent.objects.get(call=call, name="answering_machine_detection")
    assert event.payload == {"answered_by": answered_by, "amd_status": amd_status, "amd_cause": "LONGGREETING-2000-1500"}


# --- after (transfer) ----------------------------------------------------------------------------


def connected_inbound(agent) -> Call:
    call = call_start(channel=Call.Channel.ASTERISK, agent=agent, from_number="+14155552671", to_number="7000",
                      provider_call_id="1733030600.9", answered=False)
    call_connect(call_id=call.pk)
    return call


def after(fastagi, call: Call, **variables) -> FakeChannel:
    channel = FakeChannel(fastagi.port, variables={"VOICECRM_CALL_UUID": str(call.public_id), **variables})
    return channel.run(agi_environment(port=fastagi.port, script="after", uniqueid=call.provider_call_id))


def test_after_a_hand_over_the_dialplan_gets_the_transfer_target(fastagi, agent):
    call = connected_inbound(agent)
    call_transfer_log(call=call, target="+14155550100", reason="caller_request")
    call_finalize(call_id=call.pk, end_reason="transfer")

    channel = after(fastagi, call)

    assert channel.variables["VOICECRM_TRANSFER"] == "+14155550100"
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER, name="asterisk_dial").count() == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "transfer")


def test_after_waits_for_a_session_that_is_still_storing_its_hand_over(fastagi, agent):
    call = connected_inbound(agent)

    def session_ends_later():
        time.sleep(0.3)  # AudioSocket() returned before the session's last writes
        call_transfer_log(call=call, target="+14155550100", reason="caller_request")
        call_finalize(call_id=call.pk, end_reason="transfer")

    writer = threading.Thread(target=session_ends_later)
    writer.start()
    channel = after(fastagi, call)
    writer.join()
    assert channel.variables["VOICECRM_TRANSFER"] == "+14155550100"


def test_after_a_call_without_a_hand_over_the_transfer_is_empty(fastagi, agent):
    call = connected_inbound(agent)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    channel = after(fastagi, call)
    assert channel.variables["VOICECRM_TRANSFER"] == ""
    assert not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).exists()


def test_a_target_that_could_inject_dial_options_is_refused(fastagi, agent):
    call = connected_inbound(agent)
    call_transfer_log(call=call, target="100,,U(evil)", reason="caller_request")
    call_finalize(call_id=call.pk, end_reason="transfer")
    channel = after(fastagi, call)
    assert channel.variables["VOICECRM_TRANSFER"] == ""
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.ERROR, name="transfer_target_refused").exists()


# --- hangup --------------------------------------------------------------------------------------


def hangup(fastagi, call: Call, **variables) -> FakeChannel:
    channel = FakeChannel(fastagi.port, dead=True,
                          variables={"VOICECRM_CALL_UUID": str(call.public_id), **variables})
    return channel.run(agi_environment(port=fastagi.port, script="hangup", extension="h",
                                       uniqueid="1733030700.1", channel="Local/+14155550123@voicecrm-dial-00000001;2"))


@pytest.mark.parametrize(("dial_status", "cause", "status", "retried"), [
    ("BUSY", "17", Call.Status.BUSY, True),
    ("NOANSWER", "19", Call.Status.NO_ANSWER, True),
    ("CHANUNAVAIL", "17", Call.Status.BUSY, True),  # the trunk said busy in its cause
    ("CONGESTION", "34", Call.Status.FAILED, False),
    ("ANSWER", "16", Call.Status.FAILED, False),  # answered, but the audio never connected
])
def test_hangup_reports_an_outbound_call_that_never_connected(fastagi, agent, dial_status, cause, status, retried):
    call = outbound_call(agent)
    hangup(fastagi, call, DIALSTATUS=dial_status, HANGUPCAUSE=cause)
    hangup(fastagi, call, DIALSTATUS=dial_status, HANGUPCAUSE=cause)  # the other half's h: no second report

    call.refresh_from_db()
    assert call.status == status
    assert call.end_reason == f"{dial_status}/{cause}"
    assert (call.retry_due_at is not None) is retried  # telephony.outbound schedules the next attempt
    assert CallEvent.objects.filter(call=call, name="retry_scheduled").count() == int(retried)


def test_hangup_of_an_inbound_call_before_its_audio_connected_cancels_it(fastagi, agent):
    call = call_start(channel=Call.Channel.ASTERISK, agent=agent, provider_call_id="1733030800.5", answered=False)
    channel = FakeChannel(fastagi.port, dead=True, variables={"VOICECRM_CALL_UUID": str(call.public_id)})
    channel.run(agi_environment(port=fastagi.port, script="hangup", extension="h", uniqueid="1733030800.5"))
    call.refresh_from_db()
    assert call.status == Call.Status.CANCELED


def test_hangup_leaves_a_connected_call_to_its_voice_session(fastagi, agent):
    call = connected_inbound(agent)
    hangup(fastagi, call, DIALSTATUS="", HANGUPCAUSE="16")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS


def test_hangup_after_a_transfer_records_its_outcome_once(fastagi, agent):
    call = connected_inbound(agent)
    call_transfer_log(call=call, target="+14155550100", reason="caller_request")
    call_finalize(call_id=call.pk, end_reason="transfer")
    after(fastagi, call)
    for _ in range(2):
        hangup(fastagi, call, DIALSTATUS="ANSWER", HANGUPCAUSE="16", VOICECRM_TRANSFER="+14155550100")
    outcome = CallEvent.objects.get(call=call, name__startswith="asterisk_transfer_")
    assert outcome.name == "asterisk_transfer_answer"
    assert outcome.payload == {"target": "+14155550100", "dial_status": "ANSWER", "hangup_cause": "16"}
