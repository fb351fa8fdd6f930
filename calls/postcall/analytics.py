"""Stage 6: the agent's statistics for the call's day, recomputed from that day's calls.

Recomputing (rather than adding one call) makes the stage idempotent and lets a re-run or
a late call correct the day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

from django.utils import timezone

from calls.models import AgentDailyStats, Call, CallEvent, Turn
from calls.postcall.errors import StageSkipped


def percentile(values: list[int], pct: float) -> int | None:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, start + dt.timedelta(days=1)


def agent_daily_stats_rollup(*, agent_id: int, day: dt.date) -> AgentDailyStats:
    start, end = _day_bounds(day)
    calls = list(
        Call.objects.filter(agent_id=agent_id, started_at__gte=start, started_at__lt=end,
                            status__in=Call.TERMINAL_STATUSES)
        .select_related("agent").only("id", "intent", "duration_seconds", "end_reason", "structured_data",
                                      "schema_version", "agent__extraction_schema")
    )
    ids = [c.id for c in calls]
    transferred = set(CallEvent.objects.filter(call_id__in=ids, kind=CallEvent.Kind.TRANSFER).values_list("call_id", flat=True))
    transferred |= {c.id for c in calls if c.end_reason == "transfer"}
    durations = [c.duration_seconds for c in calls if c.duration_seconds is not None]
    intents = Counter(c.intent or "unknown" for c in calls)
    analyzed = [c for c in calls if c.schema_version is not None]
    completeness = []
    for c in analyzed:
        fields = list(((c.agent.extraction_schema if c.agent else {}) or {}).get("properties", {}))
        if fields:
            filled = sum(1 for f in fields if (c.structured_data or {}).get(f) not in (None, ""))
            completeness.append(filled / len(fields))
    latencies = list(
        Turn.objects.filter(call_id__in=ids, voice_to_voice_ms__isnull=False).values_list("voice_to_voice_ms", flat=True)
    )
    n = len(calls)
    stats, _ = AgentDailyStats.objects.update_or_create(
        agent_id=agent_id, day=day,
        defaults={
            "calls": n,
            "contained": n - len(transferred),
            "containment_rate": round((n - len(transferred)) / n, 4) if n else None,
            "average_duration_seconds": round(sum(durations) / len(durations), 2) if durations else None,
            "intents": dict(intents.most_common()),
            "analyzed_calls": len(analyzed),
            "extraction_completeness": round(sum(completeness) / len(completeness), 4) if completeness else None,
            "turns_measured": len(latencies),
            "voice_to_voice_p50_ms": percentile(latencies, 50),
            "voice_to_voice_p95_ms": percentile(latencies, 95),
        },
    )
    return stats


def call_analytics(*, call: Call) -> dict:
    if not call.agent_id:
        raise StageSkipped("the call has no agent")
    day = timezone.localdate(call.started_at)
    stats = agent_daily_stats_rollup(agent_id=call.agent_id, day=day)
    return {"day": day.isoformat(), "calls": stats.calls}
