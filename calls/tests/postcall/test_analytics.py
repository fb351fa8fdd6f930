"""Daily statistics per agent, recomputed from the day's calls."""

import datetime as dt

import pytest
from django.utils import timezone

from calls.models import AgentDailyStats, Call, CallEvent, Turn
from calls.postcall.analytics import agent_daily_stats_rollup, percentile
from calls.services import call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([700], 95) == 700


def test_the_rollup_counts_containment_intents_completeness_and_latency(broker):
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    calls = []
    for n, (intent, transferred, data) in enumerate([
        ("driver_check_in", False, {"driver_status": "delayed", "eta": "x", "delay_reason": "traffic"}),
        ("driver_check_in", False, {"driver_status": "arrived"}),
        ("emergency", True, {}),
    ]):
        call = call_with_turns(scenarios.CHECK_IN, started_at=noon + dt.timedelta(minutes=n))
        call_finalize(call_id=call.pk, end_reason="transfer" if transferred else "agent_end", intent=intent)
        Call.objects.filter(pk=call.pk).update(duration_seconds=60 * (n + 1), structured_data=data,
                                               schema_version=call.agent.version)
        calls.append(call)
    CallEvent.objects.create(call=calls[2], kind="transfer", name="transfer")
    yesterday = call_with_turns(scenarios.CHECK_IN, started_at=noon - dt.timedelta(days=1))
    call_finalize(call_id=yesterday.pk)
    for i, ms in enumerate([400, 500, 600, 700, 2000]):
        Turn.objects.filter(call=calls[i % 3], index=i).update(voice_to_voice_ms=ms)

    stats = agent_daily_stats_rollup(agent_id=calls[0].agent_id, day=noon.date())
    assert (stats.calls, stats.contained, stats.containment_rate) == (3, 2, 0.6667)
    assert stats.average_duration_seconds == 120.0
    assert stats.intents == {"driver_check_in": 2, "emergency": 1}
    assert stats.analyzed_calls == 3 and stats.extraction_completeness == round((3 / 12 + 1 / 12 + 0) / 3, 4)
    assert (stats.turns_measured, stats.voice_to_voice_p50_ms, stats.voice_to_voice_p95_ms) == (5, 600, 2000)

    again = agent_daily_stats_rollup(agent_id=calls[0].agent_id, day=noon.date())
    assert again.pk == stats.pk and again.calls == 3 and AgentDailyStats.objects.count() == 1
