"""/api/v1/calls/: the list and detail (new fields, who sees the phone network's errors, filters,
search, ordering, queries that do not grow), live calls, transcripts as JSON and text, the
recording with byte ranges over a token, hanging up and re-running the analysis, for each role."""

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.tests.factories import AgentConfigFactory
from calls.models import AnalysisRun, Call, CallEvent, CallTranscript, InformationRecord, Turn
from customers.tests.factories import CustomerFactory
from telephony import fake
from voicecrm.tests.test_api import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatch():
    return AgentConfigFactory(slug="dispatch", name="Dispatch", closing="Thanks, drive safe.")


@pytest.fixture
def fake_provider(settings):
    settings.TELEPHONY_PROVIDERS = {"twilio": "telephony.fake.FakeProvider", "asterisk": "telephony.fake.FakeProvider"}
    fake.outbox.clear()
    yield fake.outbox
    fake.outbox.clear()


@pytest.fixture
def queued_pipeline():
    """Keep the post-call pipeline queued (a re-run would otherwise run in the request)."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


def ended() -> dict:
    """Start and end times of a call that is over (a call cannot end before it starts)."""
    now = timezone.now()
    return {"started_at": now - dt.timedelta(minutes=1), "ended_at": now}


def outbound_retry(agent) -> tuple[Call, Call]:
    first = Call.objects.create(channel="twilio", direction="outbound", agent=agent, to_number="+14155550123",
                                status=Call.Status.FAILED, provider_error="ARI unreachable: [Errno 111] 10.0.0.5:8088",
                                **ended(), variables={"driver_name": "Sam", "load_number": "L-1042"})
    retry = Call.objects.create(channel="twilio", direction="outbound", agent=agent, to_number="+14155550123",
                                status=Call.Status.NO_ANSWER, attempt=2, retry_of=first, answered_by="machine_end_beep",
                                **ended(), variables=first.variables)
    return first, retry


def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


# --- list and detail ---------------------------------------------------------------------------------


def test_the_list_shows_outbound_fields_and_only_supervisors_read_the_networks_errors(dispatch, sam, bob, charlie):
    first, retry = outbound_retry(dispatch)
    for user, sees in ((sam, True), (bob, False), (charlie, False)):
        rows = {row["id"]: row for row in api_as(user).get("/api/v1/calls/").json()["results"]}
        row, again = rows[str(first.public_id)], rows[str(retry.public_id)]
        assert row["variables"] == {"driver_name": "Sam", "load_number": "L-1042"}
        assert (again["attempt"], again["retry_of"], again["answered_by"]) == (2, str(first.public_id), "machine_end_beep")
        assert row["retry_of"] is None and row["attempt"] == 1
        assert row["provider_error"] == (first.provider_error if sees else None), user
        detail = api_as(user).get(f"/api/v1/calls/{first.public_id}/").json()
        assert detail["provider_error"] == (first.provider_error if sees else None)
        assert "request_key" not in detail


def test_the_list_is_refused_to_anonymous_requests_and_users_without_a_role(django_user_model):
    assert APIClient().get("/api/v1/calls/").status_code == 401
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x")
    assert api_as(dave).get("/api/v1/calls/").status_code == 403


def test_filters_search_and_ordering(dispatch, charlie):
    other = AgentConfigFactory(slug="reception")
    customer = CustomerFactory(last_name="Okafor")
    now = timezone.now()
    long_call = Call.objects.create(channel="browser", agent=dispatch, duration_seconds=300, started_at=now,
                                    summary="Driver reported a flat tyre near Reno.", customer=customer)
    short_call = Call.objects.create(channel="twilio", agent=dispatch, duration_seconds=30, direction="outbound",
                                     started_at=now - dt.timedelta(hours=2), outcome="voicemail")
    old_call = Call.objects.create(channel="browser", agent=other, duration_seconds=100,
                                   started_at=now - dt.timedelta(days=3))
    client = api_as(charlie)

    def ids(**query):
        response = client.get("/api/v1/calls/", query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(agent="dispatch") == [str(long_call.public_id), str(short_call.public_id)]
    assert ids(direction="outbound", outcome="voicemail") == [str(short_call.public_id)]
    assert ids(started_after=(now - dt.timedelta(days=1)).isoformat(), agent="reception") == []
    assert ids(started_before=(now - dt.timedelta(days=1)).isoformat()) == [str(old_call.public_id)]
    assert ids(search="flat tyre") == [str(long_call.public_id)]
    assert ids(customer=customer.pk) == [str(long_call.public_id)]
    assert ids(ordering="duration_seconds") == [str(c.public_id) for c in (short_call, old_call, long_call)]
    assert ids(ordering="-duration_seconds")[0] == str(long_call.public_id)


@pytest.mark.parametrize(("query", "field"), [
    ({"agent": "nobody"}, "agent"),
    ({"direction": "sideways"}, "direction"),
    ({"status": "exploded"}, "status"),
    ({"analysis_status": "maybe"}, "analysis_status"),
    ({"started_after": "last tuesday"}, "started_after"),
    ({"customer": "abc"}, "customer"),
    ({"ordering": "summary"}, "ordering"),
])
def test_bad_filter_values_are_400_naming_the_parameter(query, field, charlie):
    response = api_as(charlie).get("/api/v1/calls/", query)
    assert response.status_code == 400 and field in response.json(), response.content


def test_unknown_calls_are_404(charlie):
    client = api_as(charlie)
    for suffix in ("", "transcript/", "recording/"):
        assert client.get(f"/api/v1/calls/00000000-0000-0000-0000-000000000000/{suffix}").status_code == 404


def test_list_and_detail_queries_do_not_grow_with_rows(dispatch, sam):
    client = api_as(sam)
    client.get("/api/v1/calls/")  # the token's first use

    def add_calls(n: int) -> Call:
        for _ in range(n):
            first, retry = outbound_retry(dispatch)
            retry.customer = CustomerFactory()
            retry.save()
            for index in range(3):
                Turn.objects.create(call=retry, index=index, speaker="caller", text="Hi")
                CallEvent.objects.create(call=retry, kind="dtmf", name=str(index))
                InformationRecord.objects.create(call=retry, category="contact_details", key=f"k{index}", value="v")
        return retry

    call = add_calls(1)
    list_few = count_queries(lambda: client.get("/api/v1/calls/"))
    detail_few = count_queries(lambda: client.get(f"/api/v1/calls/{call.public_id}/"))
    call = add_calls(10)
    for index in range(3, 40):
        Turn.objects.create(call=call, index=index, speaker="agent", text="Okay")
    assert count_queries(lambda: client.get("/api/v1/calls/")) == list_few
    assert count_queries(lambda: client.get(f"/api/v1/calls/{call.public_id}/")) == detail_few
    assert list_few <= 7 and detail_few <= 9


# --- live calls ----------------------------------------------------------------------------------------


def test_live_lists_calls_in_progress_with_agent_caller_customer_and_duration(dispatch, sam, bob, charlie):
    customer = CustomerFactory(first_name="Ada", last_name="Obi", account_number="123456")
    inbound = Call.objects.create(channel="twilio", agent=dispatch, from_number="+14155550111", customer=customer,
                                  status=Call.Status.IN_PROGRESS, started_at=timezone.now() - dt.timedelta(minutes=3),
                                  answered_at=timezone.now() - dt.timedelta(minutes=2), heartbeat_at=timezone.now())
    Turn.objects.create(call=inbound, index=0, speaker="agent", text="Hello")
    outbound = Call.objects.create(channel="asterisk", direction="outbound", to_number="+14155550122",
                                   status=Call.Status.IN_PROGRESS, answered_at=timezone.now())
    Call.objects.create(channel="browser", status=Call.Status.COMPLETED, **ended())
    Call.objects.create(channel="twilio", status=Call.Status.RINGING)
    assert APIClient().get("/api/v1/calls/live/").status_code == 401
    for user in (sam, bob, charlie):
        body = api_as(user).get("/api/v1/calls/live/").json()
        assert [row["id"] for row in body["results"]] == [str(inbound.public_id), str(outbound.public_id)]
    first, second = body["results"]
    assert (first["agent"], first["agent_name"], first["caller"], first["turns"]) == (
        "dispatch", "Dispatch", "+14155550111", 1)
    assert first["customer"] == {"id": customer.pk, "name": "Ada Obi", "account_number": "123456"}
    assert 115 <= first["duration_seconds"] <= 180  # since it was answered, two minutes ago
    assert (second["agent"], second["caller"], second["customer"]) == (None, "+14155550122", None)
    filtered = api_as(charlie).get("/api/v1/calls/live/", {"channel": "asterisk"}).json()["results"]
    assert [row["id"] for row in filtered] == [str(outbound.public_id)]


def test_live_queries_do_not_grow_with_calls(dispatch, charlie):
    client = api_as(charlie)
    client.get("/api/v1/calls/live/")

    def add(n: int) -> None:
        for _ in range(n):
            call = Call.objects.create(channel="browser", agent=dispatch, customer=CustomerFactory(),
                                       status=Call.Status.IN_PROGRESS)
            Turn.objects.create(call=call, index=0, speaker="agent", text="Hello")

    add(1)
    few = count_queries(lambda: client.get("/api/v1/calls/live/"))
    add(12)
    assert count_queries(lambda: client.get("/api/v1/calls/live/")) == few


# --- transcripts --------------------------------------------------------------------------------------


@pytest.fixture
def conversation(dispatch) -> Call:
    call = Call.objects.create(channel="twilio", agent=dispatch, status=Call.Status.COMPLETED, **ended())
    Turn.objects.create(call=call, index=0, speaker="agent", text="Hi, this is dispatch.", start_ms=0, end_ms=1800,
                        tts_first_audio_ms=80)
    Turn.objects.create(call=call, index=1, speaker="caller", text="Yes,\nspeaking.", start_ms=4200, end_ms=5000,
                        stt_ms=310, endpointing_ms=300)
    Turn.objects.create(call=call, index=3, speaker="caller", text="I'm", start_ms=65_400, partial=True)
    Turn.objects.create(call=call, index=2, speaker="agent", text="Great, I'm calling about load L-1042 today.",
                        heard_text="Great, I'm calling", interrupted=True, start_ms=6000, voice_to_voice_ms=480)
    return call


def test_the_transcript_as_json_has_every_turn_with_heard_text_and_timings(conversation, charlie):
    response = api_as(charlie).get(f"/api/v1/calls/{conversation.public_id}/transcript/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["id"] == str(conversation.public_id) and body["recording_transcript"] is None
    assert [t["index"] for t in body["turns"]] == [0, 1, 2, 3]
    cut = body["turns"][2]
    assert (cut["speaker"], cut["heard_text"], cut["interrupted"], cut["voice_to_voice_ms"]) == (
        "agent", "Great, I'm calling", True, 480)
    assert body["turns"][1]["stt_ms"] == 310 and body["turns"][3]["partial"]


TEXT = ("[00:00] Agent: Hi, this is dispatch.\n"
        "[00:04] Caller: Yes, speaking.\n"
        "[00:06] Agent (interrupted): Great, I'm calling\n"
        "[01:05] Caller (cut off): I'm\n")


def test_the_transcript_as_plain_text_is_one_line_a_turn(conversation, bob):
    client = api_as(bob)
    url = f"/api/v1/calls/{conversation.public_id}/transcript/"
    by_format = client.get(url, {"format": "text"})
    by_accept = client.get(url, HTTP_ACCEPT="text/plain")
    for response in (by_format, by_accept):
        assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content.decode() == TEXT
    missing = client.get("/api/v1/calls/00000000-0000-0000-0000-000000000000/transcript/", {"format": "text"})
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/plain")


def test_the_transcript_includes_the_recordings_post_call_transcript(conversation, charlie):
    CallTranscript.objects.create(call=conversation, model="base", beam_size=5, language="en", text="Hi. Yes.",
                                  segments=[{"speaker": "agent", "start": 0.0, "end": 1.2, "text": "Hi.",
                                             "confidence": 0.9}])
    body = api_as(charlie).get(f"/api/v1/calls/{conversation.public_id}/transcript/").json()
    assert body["recording_transcript"]["text"] == "Hi. Yes." and body["recording_transcript"]["model"] == "base"


def test_the_transcript_is_refused_to_anonymous_requests_and_its_queries_do_not_grow(conversation, charlie):
    url = f"/api/v1/calls/{conversation.public_id}/transcript/"
    assert APIClient().get(url).status_code == 401
    client = api_as(charlie)
    client.get(url)
    few = count_queries(lambda: client.get(url))
    for index in range(4, 60):
        Turn.objects.create(call=conversation, index=index, speaker="caller", text="More")
    assert count_queries(lambda: client.get(url)) == few


# --- the recording -------------------------------------------------------------------------------------

AUDIO = bytes(range(256)) * 40


@pytest.fixture
def recorded_call():
    call = Call.objects.create(channel=Call.Channel.BROWSER, status=Call.Status.COMPLETED, **ended())
    call.recording.save("recording.wav", ContentFile(AUDIO))
    yield call
    call.recording.delete(save=False)


def body_of(response) -> bytes:
    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)()


def test_the_recording_downloads_with_a_token_whole_or_by_range(recorded_call, charlie):
    client = api_as(charlie)
    url = f"/api/v1/calls/{recorded_call.public_id}/recording/"
    whole = client.get(url, HTTP_ACCEPT="audio/*")
    assert whole.status_code == 200 and body_of(whole) == AUDIO
    assert whole["Accept-Ranges"] == "bytes" and "no-store" in whole["Cache-Control"]
    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    assert body_of(part) == AUDIO[100:200]
    assert client.get(url, HTTP_RANGE=f"bytes={len(AUDIO)}-").status_code == 416
    assert client.head(url).status_code == 200


def test_the_recording_is_refused_without_credentials_or_a_role_and_404_without_a_file(
        recorded_call, django_user_model, charlie):
    url = f"/api/v1/calls/{recorded_call.public_id}/recording/"
    anonymous = APIClient().get(url)
    assert anonymous.status_code == 401 and anonymous.json()["detail"]
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x")
    assert api_as(dave).get(url).status_code == 403
    silent = Call.objects.create(channel=Call.Channel.BROWSER)
    assert api_as(charlie).get(f"/api/v1/calls/{silent.public_id}/recording/").status_code == 404


# --- hang up ---------------------------------------------------------------------------------------------


def live_call(channel: str, agent=None, **fields) -> Call:
    return Call.objects.create(channel=channel, agent=agent, status=Call.Status.IN_PROGRESS, answered_at=timezone.now(),
                               heartbeat_at=timezone.now(), provider_call_id=fields.pop("provider_call_id", ""),
                               **fields)


def hangup_requests(call: Call) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call=call, name="hangup_requested"))


@pytest.mark.parametrize("channel", ["twilio", "asterisk"])
def test_a_phone_call_is_hung_up_through_its_network(channel, dispatch, bob, fake_provider):
    call = live_call(channel, dispatch, provider_call_id="CA0001")
    response = api_as(bob).post(f"/api/v1/calls/{call.public_id}/hangup/")
    assert response.status_code == 202 and response.json()["id"] == str(call.public_id)
    assert fake_provider == [{"action": "hang_up", "call_id": "CA0001"}]
    [request] = hangup_requests(call)  # the session serving the audio is asked too
    assert request.payload == {"by": "bob"}


def test_a_browser_call_is_asked_to_end_once_however_often_staff_click(dispatch, sam, fake_provider):
    call = live_call("browser", dispatch)
    for _ in range(2):
        assert api_as(sam).post(f"/api/v1/calls/{call.public_id}/hangup/").status_code == 202
    assert len(hangup_requests(call)) == 1 and fake_provider == []


def test_only_those_who_place_calls_hang_up(dispatch, charlie, django_user_model, fake_provider):
    call = live_call("twilio", dispatch, provider_call_id="CA0002")
    url = f"/api/v1/calls/{call.public_id}/hangup/"
    assert APIClient().post(url).status_code == 401
    assert api_as(charlie).post(url).status_code == 403
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x")
    assert api_as(dave).post(url).status_code == 403
    assert fake_provider == [] and hangup_requests(call) == []


def test_calls_that_are_not_live_are_409_and_nothing_is_asked(dispatch, bob, fake_provider):
    over = Call.objects.create(channel="twilio", agent=dispatch, status=Call.Status.COMPLETED, **ended())
    ringing = Call.objects.create(channel="twilio", agent=dispatch, status=Call.Status.RINGING)
    chat = live_call("text", dispatch)
    lost = live_call("browser", dispatch)
    Call.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=10))
    client = api_as(bob)
    for call, words in ((over, "completed"), (ringing, "ringing"), (chat, "text chat"), (lost, "sweep")):
        response = client.post(f"/api/v1/calls/{call.public_id}/hangup/")
        assert response.status_code == 409 and words in response.json()["detail"], response.content
        assert hangup_requests(call) == []
    assert fake_provider == []
    assert client.post("/api/v1/calls/00000000-0000-0000-0000-000000000000/hangup/").status_code == 404


def test_a_network_that_refuses_is_a_502_and_the_session_is_still_asked(dispatch, sam, fake_provider, monkeypatch):
    from telephony.base import TelephonyError

    def refuse(self, call):
        raise TelephonyError("Twilio could not hang up: 20003 Authenticate")

    monkeypatch.setattr(fake.FakeProvider, "hang_up", refuse)
    call = live_call("twilio", dispatch, provider_call_id="CA0003")
    response = api_as(sam).post(f"/api/v1/calls/{call.public_id}/hangup/")
    assert response.status_code == 502 and "20003" in response.json()["detail"]
    assert len(hangup_requests(call)) == 1


# --- re-run the analysis ----------------------------------------------------------------------------------


def test_a_supervisor_reruns_the_analysis_as_the_admin_does(dispatch, sam, queued_pipeline):
    call = Call.objects.create(channel="browser", agent=dispatch, status=Call.Status.COMPLETED, **ended())
    AnalysisRun.objects.create(call=call, number=1, reason="call_ended", status="done")
    response = api_as(sam).post(f"/api/v1/calls/{call.public_id}/reanalyze/", format="json")
    assert response.status_code == 202, response.content
    assert response.json() | {"created_at": None} == {"call": str(call.public_id), "number": 2, "reason": "rerun",
                                                       "status": "pending", "created_at": None}
    run = AnalysisRun.objects.get(call=call, number=2)
    assert run.requested_by == sam and run.stages.count() == 6
    call.refresh_from_db()
    assert call.analysis_status == Call.AnalysisStatus.PENDING
    again = api_as(sam).post(f"/api/v1/calls/{call.public_id}/reanalyze/", {"kind": "reextract"}, format="json")
    assert again.status_code == 409 and "under way" in again.json()["detail"]


def test_reextraction_runs_only_the_stages_from_extraction_on(dispatch, alice, queued_pipeline):
    call = Call.objects.create(channel="browser", agent=dispatch, status=Call.Status.COMPLETED, **ended())
    response = api_as(alice).post(f"/api/v1/calls/{call.public_id}/reanalyze/", {"kind": "reextract"}, format="json")
    assert response.status_code == 202 and response.json()["reason"] == "reextract"
    assert "transcribe" not in set(AnalysisRun.objects.get(call=call).stages.values_list("name", flat=True))


def test_reanalysis_is_refused_to_agents_viewers_and_calls_that_have_not_ended(dispatch, sam, bob, charlie,
                                                                               queued_pipeline):
    done = Call.objects.create(channel="browser", agent=dispatch, status=Call.Status.COMPLETED, **ended())
    url = f"/api/v1/calls/{done.public_id}/reanalyze/"
    assert APIClient().post(url).status_code == 401
    assert api_as(bob).post(url).status_code == 403 and api_as(charlie).post(url).status_code == 403
    bad = api_as(sam).post(url, {"kind": "everything"}, format="json")
    assert bad.status_code == 400 and "kind" in bad.json()
    live = live_call("browser", dispatch)
    refused = api_as(sam).post(f"/api/v1/calls/{live.public_id}/reanalyze/")
    assert refused.status_code == 409 and refused.json()["detail"] == "The call has not ended."
    assert not AnalysisRun.objects.exists()
    assert api_as(sam).post("/api/v1/calls/00000000-0000-0000-0000-000000000000/reanalyze/").status_code == 404
