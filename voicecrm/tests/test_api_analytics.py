"""Analytics: the selectors of calls/analytics.py on a known set of calls, the same answers from
PostgreSQL's percentile_cont and the portable fallback, a fixed number of queries whatever the
rows, and /api/v1/analytics/… for every role, with bad ranges refused."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.tests.factories import AgentConfigFactory
from calls import analytics
from calls.models import AnalysisRun, Call, CallEvent, Turn
from tickets.models import Ticket
from voicecrm.tests.test_api import api_as

pytestmark = pytest.mark.django_db

DAY1, DAY2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


def make_call(agent, *, start: dt.datetime, channel="browser", status=Call.Status.COMPLETED, answered=True,
              seconds=60.0, intent="", outcome="", end_reason="caller_hangup", v2v=(), turnaround=None) -> Call:
    ended = start + dt.timedelta(seconds=seconds) if status in Call.TERMINAL_STATUSES else None
    call = Call.objects.create(
        agent=agent, channel=channel, status=status, started_at=start, answered_at=start if answered else None,
        ended_at=ended, duration_seconds=seconds if ended and answered else None, intent=intent, outcome=outcome,
        end_reason=end_reason if ended else "")
    for index, ms in enumerate(v2v):
        Turn.objects.create(call=call, index=index, speaker="agent", text="Hello", voice_to_voice_ms=ms,
                            stt_ms=100 + index, agent_ms=10, endpointing_ms=300, tts_first_audio_ms=90)
    if turnaround is not None:
        AnalysisRun.objects.create(call=call, number=1, reason=AnalysisRun.Reason.CALL_ENDED,
                                   status=AnalysisRun.Status.DONE, created_at=ended,
                                   finished_at=ended + dt.timedelta(seconds=turnaround))
    return call


@pytest.fixture
def dispatch():
    return AgentConfigFactory(slug="dispatch")


@pytest.fixture
def reception():
    return AgentConfigFactory(slug="reception")


@pytest.fixture
def calls(dispatch, reception):
    """Two days of dispatch's calls and one of reception's, with everything the figures count."""
    a = make_call(dispatch, start=at(DAY1, 9), seconds=60, intent="check_in", outcome="resolved",
                  v2v=[400, 500, 600], turnaround=4)
    b = make_call(dispatch, start=at(DAY1, 10), seconds=120, intent="check_in", outcome="resolved",
                  v2v=[700], turnaround=8, channel="twilio")
    c = make_call(dispatch, start=at(DAY1, 23, 59), seconds=180, intent="emergency", outcome="ticket",
                  end_reason="transfer", v2v=[2000], turnaround=12)
    make_call(dispatch, start=at(DAY1, 11), status=Call.Status.NO_ANSWER, answered=False, seconds=20,
              channel="twilio")
    d = make_call(dispatch, start=at(DAY2, 8), seconds=90, intent="check_in", v2v=[460])
    CallEvent.objects.create(call=d, kind=CallEvent.Kind.TRANSFER, name="transfer")  # transferred mid-call
    make_call(dispatch, start=at(DAY2, 12), status=Call.Status.IN_PROGRESS, intent="check_in", v2v=[300])
    make_call(reception, start=at(DAY1, 9), seconds=30, intent="hours", outcome="resolved", v2v=[5000])
    make_call(dispatch, start=at(DAY1, 0) - dt.timedelta(seconds=1), seconds=30)  # the day before: outside
    Ticket.objects.create(subject="Crash on I-80", call=c)
    Ticket.objects.create(subject="Late load", call=b)
    Ticket.objects.create(subject="Not from a call")
    return {"a": a, "b": b, "c": c, "d": d}


# --- the selectors ---------------------------------------------------------------------------------


def test_percentile_cont_interpolates_between_the_nearest_values():
    assert analytics.percentile_cont([], 0.5) is None
    assert analytics.percentile_cont([7], 0.95) == 7
    assert analytics.percentile_cont([4, 1, 3, 2], 0.5) == 2.5
    assert analytics.percentile_cont([1, 2, 3, 4], 0.95) == pytest.approx(3.85)


def test_the_summary_counts_answered_contained_outcomes_tickets_latency_and_turnaround(calls, dispatch):
    summary = analytics.analytics_summary(start=DAY1, end=DAY2, agent_id=dispatch.pk)
    assert (summary["calls"], summary["answered"], summary["handled"]) == (6, 5, 4)
    # c ended by a transfer and d had one: a and b were handled without a person.
    assert (summary["contained"], summary["containment_rate"]) == (2, 0.5)
    assert summary["average_handle_seconds"] == 112.5  # (60 + 120 + 180 + 90) / 4
    assert summary["outcomes"] == {"unknown": 3, "resolved": 2, "ticket": 1}
    assert summary["tickets_opened"] == 2
    # [300, 400, 460, 500, 600, 700, 2000]: p50 500; p95 at rank 5.7 = 700 + 0.7 × 1300
    assert (summary["turns_measured"], summary["voice_to_voice_p50_ms"], summary["voice_to_voice_p95_ms"]) == (7, 500, 1610)
    assert summary["turnaround_average_seconds"] == 8.0 and summary["turnaround_p95_seconds"] == 11.6
    assert (summary["start"], summary["end"]) == (DAY1, DAY2)


def test_agent_and_channel_narrow_the_scope(calls, dispatch, reception):
    everyone = analytics.analytics_summary(start=DAY1, end=DAY2)
    assert everyone["calls"] == 7 and everyone["voice_to_voice_p95_ms"] > 2000  # reception's slow turn counts
    twilio = analytics.analytics_summary(start=DAY1, end=DAY2, agent_id=dispatch.pk, channel="twilio")
    assert (twilio["calls"], twilio["answered"], twilio["contained"], twilio["tickets_opened"]) == (2, 1, 1, 1)
    assert analytics.analytics_summary(start=DAY1, end=DAY1, agent_id=reception.pk)["outcomes"] == {"resolved": 1}


def test_daily_has_every_day_of_the_range_and_counts_each_call_on_its_day(calls, dispatch):
    days = analytics.analytics_daily(start=DAY1 - dt.timedelta(days=1), end=DAY2 + dt.timedelta(days=1),
                                     agent_id=dispatch.pk)
    assert [row["day"] for row in days] == [DAY1 - dt.timedelta(days=1), DAY1, DAY2, DAY2 + dt.timedelta(days=1)]
    before, first, second, after = days
    assert before["calls"] == 1 and after["calls"] == 0 and after["containment_rate"] is None
    assert (first["calls"], first["answered"], first["handled"], first["contained"]) == (4, 3, 3, 2)
    assert first["tickets_opened"] == 2 and first["voice_to_voice_p50_ms"] == 600  # c at 23:59 is DAY1's
    assert (first["turnaround_average_seconds"], second["turnaround_average_seconds"]) == (8.0, None)
    assert (second["calls"], second["handled"], second["contained"], second["containment_rate"]) == (2, 1, 0, 0.0)
    assert (second["turns_measured"], second["voice_to_voice_p50_ms"], second["voice_to_voice_p95_ms"]) == (2, 380, 452)


def test_intents_are_counted_most_frequent_first(calls, dispatch):
    rows = analytics.analytics_intents(start=DAY1, end=DAY2, agent_id=dispatch.pk)
    assert [(row["intent"], row["calls"], row["contained"]) for row in rows] == [
        ("check_in", 4, 2), ("unknown", 1, 0), ("emergency", 1, 0)]  # ties by name, "" first
    assert rows[0]["average_handle_seconds"] == 90.0  # a, b, d: the call in progress is not handled yet


def test_latency_per_day_with_each_stages_median(calls, dispatch):
    first, second = analytics.analytics_latency(start=DAY1, end=DAY2, agent_id=dispatch.pk)
    assert first["day"] == DAY1 and first["turns_measured"] == 5
    assert (first["voice_to_voice_p50_ms"], first["voice_to_voice_p95_ms"]) == (600, 1740)
    assert (first["endpointing_p50_ms"], first["agent_p50_ms"], first["tts_first_audio_p50_ms"]) == (300, 10, 90)
    assert first["stt_p50_ms"] == 100  # [100, 101, 102, 100, 100]
    assert second["turns_measured"] == 2


def test_the_fallback_without_percentile_cont_gives_the_same_answers(calls, dispatch, monkeypatch):
    scope = {"start": DAY1 - dt.timedelta(days=1), "end": DAY2, "agent_id": dispatch.pk}
    in_database = (analytics.analytics_summary(**scope), analytics.analytics_daily(**scope),
                   analytics.analytics_latency(**scope))
    monkeypatch.setattr(analytics, "_in_database", lambda: False)
    fallback = (analytics.analytics_summary(**scope), analytics.analytics_daily(**scope),
                analytics.analytics_latency(**scope))
    assert fallback == in_database


def test_ranges_that_end_before_they_start_or_are_too_long_are_refused():
    with pytest.raises(ValueError, match="ends before"):
        analytics.analytics_summary(start=DAY2, end=DAY1)
    with pytest.raises(ValueError, match="366"):
        analytics.analytics_daily(start=DAY1, end=DAY1 + dt.timedelta(days=366))
    assert len(analytics.analytics_daily(start=DAY1, end=DAY1 + dt.timedelta(days=365))) == 366


def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as queries:
        fn()
    return len(queries)


def test_each_selector_costs_the_same_queries_for_one_call_or_many(dispatch):
    selectors = [analytics.analytics_summary, analytics.analytics_daily, analytics.analytics_intents,
                 analytics.analytics_latency]

    def costs():
        return [count_queries(lambda s=s: s(start=DAY1, end=DAY2 + dt.timedelta(days=30))) for s in selectors]

    make_call(dispatch, start=at(DAY1, 9), v2v=[400], turnaround=3, intent="a")
    few = costs()
    for n in range(30):
        call = make_call(dispatch, start=at(DAY1 + dt.timedelta(days=n % 5), 9, n), v2v=[400, 500], turnaround=n,
                         intent=f"intent{n % 7}", outcome=f"o{n % 3}")
        Ticket.objects.create(subject="x", call=call)
    assert costs() == few == [5, 4, 1, 1]


# --- the endpoints -----------------------------------------------------------------------------------

ENDPOINTS = ["summary", "daily", "intents", "latency"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_role_reads_analytics_and_anonymous_requests_are_refused(endpoint, calls, sam, bob, charlie):
    url = f"/api/v1/analytics/{endpoint}/"
    assert APIClient().get(url).status_code == 401
    for user in (sam, bob, charlie):
        response = api_as(user).get(url, {"from": DAY1.isoformat(), "to": DAY2.isoformat()})
        assert response.status_code == 200, response.content


def test_users_without_a_role_are_refused(django_user_model, calls):
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x")
    assert api_as(dave).get("/api/v1/analytics/summary/").status_code == 403


def test_the_summary_endpoint_answers_the_selectors_figures_for_an_agent_and_channel(calls, charlie):
    response = api_as(charlie).get("/api/v1/analytics/summary/",
                                   {"from": "2026-11-02", "to": "2026-11-03", "agent": "dispatch", "channel": "twilio"})
    assert response.status_code == 200
    body = response.json()
    assert body["start"] == "2026-11-02" and body["end"] == "2026-11-03"
    assert (body["calls"], body["answered"], body["contained"], body["tickets_opened"]) == (2, 1, 1, 1)
    assert body["outcomes"] == {"resolved": 1, "unknown": 1}
    assert body["voice_to_voice_p50_ms"] == 700 and body["turnaround_average_seconds"] == 8.0


def test_daily_intents_and_latency_answer_rows_over_the_range(calls, bob):
    client = api_as(bob)
    query = {"from": "2026-11-02", "to": "2026-11-04", "agent": "dispatch"}
    daily = client.get("/api/v1/analytics/daily/", query).json()
    assert [row["day"] for row in daily["results"]] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert [row["calls"] for row in daily["results"]] == [4, 2, 0]
    intents = client.get("/api/v1/analytics/intents/", query).json()["results"]
    assert intents[0] == {"intent": "check_in", "calls": 4, "answered": 4, "handled": 3, "contained": 2,
                          "containment_rate": 0.6667, "average_handle_seconds": 90.0}
    latency = client.get("/api/v1/analytics/latency/", query).json()
    assert latency["start"] == "2026-11-02" and latency["results"][0]["voice_to_voice_p95_ms"] == 1740


def test_without_dates_the_range_is_the_last_30_days(bob, dispatch):
    make_call(dispatch, start=timezone.now() - dt.timedelta(minutes=5))
    make_call(dispatch, start=timezone.now() - dt.timedelta(days=31))
    body = api_as(bob).get("/api/v1/analytics/daily/").json()
    assert len(body["results"]) == 30 and body["end"] == timezone.localdate().isoformat()
    assert sum(row["calls"] for row in body["results"]) == 1


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-11-31"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-11-05", "to": "2026-11-04"}, "to"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "from"),  # 367 days
    ({"agent": "nobody"}, "agent"),
    ({"channel": "fax"}, "channel"),
    ({"from": "2026-11-01\x00"}, "from"),
])
def test_bad_ranges_agents_and_channels_are_400_naming_the_parameter(query, field, sam, dispatch):
    response = api_as(sam).get("/api/v1/analytics/summary/", query)
    assert response.status_code == 400 and field in response.json(), response.content


def test_a_full_year_is_allowed(sam):
    response = api_as(sam).get("/api/v1/analytics/latency/", {"from": "2025-01-01", "to": "2026-01-01"})
    assert response.status_code == 200 and len(response.json()["results"]) == 366


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_endpoints_queries_do_not_grow_with_calls_or_days(endpoint, dispatch, charlie):
    client = api_as(charlie)
    url = f"/api/v1/analytics/{endpoint}/"
    query = {"from": "2026-11-01", "to": "2026-12-31"}
    client.get(url, query)  # the token's first use writes its last-used time
    make_call(dispatch, start=at(DAY1, 9), v2v=[400], turnaround=3)
    few = count_queries(lambda: client.get(url, query))
    for n in range(25):
        make_call(dispatch, start=at(DAY1 + dt.timedelta(days=n), 9), v2v=[400, 500], turnaround=n, intent=f"i{n}")
    assert count_queries(lambda: client.get(url, query)) == few
