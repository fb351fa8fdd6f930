"""Call analytics over a date range: reads only, computed in the database.

    summary = analytics_summary(start=date(2026, 11, 1), end=date(2026, 11, 30), agent_id=3, channel="twilio")
    days = analytics_daily(start=..., end=...)       # one row per day, days without calls included
    intents = analytics_intents(start=..., end=...)  # one row per intent, most frequent first
    latency = analytics_latency(start=..., end=...)  # voice-to-voice p50/p95 per day

Every function takes the same scope: `start` and `end` (dates, both included, in the current time
zone, at most MAX_DAYS apart; ValueError otherwise), and optionally an agent id and a channel. A
call belongs to the day it started on; its turns, tickets and post-call runs count with it. They
return plain data (dicts, lists, dates, numbers), for the REST API and the supervisor console alike.

Definitions (docs/api.md, "Analytics"):
- answered: the call connected (answered_at is set);
- handled: answered and ended; contained: handled without a person, i.e. no transfer (neither a
  transfer event nor the end reason "transfer"), as AgentDailyStats counts it;
  containment_rate = contained / handled;
- average_handle_seconds: the mean duration of handled calls (answer to end);
- outcomes: handled and unhandled calls by their post-call outcome ("unknown" when none);
- tickets_opened: tickets linked to the calls;
- turnaround: seconds from a call's end to the end of its first post-call analysis, over the runs
  that finished (AnalysisRun.turnaround_seconds, as the admin shows it);
- voice-to-voice and stage timings: the Turn columns the voice session stores, in milliseconds.

Each function costs a fixed number of queries, whatever the number of calls, turns or days.
Percentiles are PostgreSQL's percentile_cont (interpolated between the two nearest values); other
databases (the embedded SQLite) fetch the values in one query and interpolate them the same way here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from calls.models import AnalysisRun, Call, CallEvent, Turn
from tickets.models import Ticket

MAX_DAYS = 366
# Turn timings reported besides voice-to-voice (their medians), in the order of a turn.
LATENCY_STAGES = ("endpointing_ms", "stt_ms", "agent_ms", "tts_first_audio_ms")


# --- percentiles ----------------------------------------------------------------------------------

class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`; NULLs are ignored."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile's fraction is between 0 and 1.")
        self.fraction = float(fraction)  # a float's repr is safe to put in the SQL text
        super().__init__(expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, fraction=repr(self.fraction), **extra_context)


def percentile_cont(values: Iterable[float], fraction: float) -> float | None:
    """percentile_cont in Python, for databases without it: p50 of [1, 2, 3, 4] is 2.5."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _in_database() -> bool:
    return connection.vendor == "postgresql"


class _Seconds(Func):
    """An interval's length in seconds (PostgreSQL), so averages and percentiles order numbers."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


# --- the scope ------------------------------------------------------------------------------------

def period_check(*, start: dt.date, end: dt.date) -> None:
    """Raise ValueError for a range these functions refuse: ending before it starts, or over MAX_DAYS."""
    if end < start:
        raise ValueError("The range ends before it starts.")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"At most {MAX_DAYS} days at once.")


def calls_in_scope(*, start: dt.date, end: dt.date, agent_id: int | None = None, channel: str | None = None,
                   prefix: str = "") -> Q:
    """The filter for calls in the scope; with prefix "call__", for their turns, tickets or runs."""
    period_check(start=start, end=end)
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    q = Q(**{f"{prefix}started_at__gte": since, f"{prefix}started_at__lt": until})
    if agent_id is not None:
        q &= Q(**{f"{prefix}agent_id": agent_id})
    if channel:
        q &= Q(**{f"{prefix}channel": channel})
    return q


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def _day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=timezone.get_current_timezone())


# --- calls ----------------------------------------------------------------------------------------

_ANSWERED = Q(answered_at__isnull=False)
_HANDLED = _ANSWERED & Q(status__in=Call.TERMINAL_STATUSES)
_CONTAINED = _HANDLED & Q(transferred=False) & ~Q(end_reason="transfer")
_CALL_AGGREGATES = {
    "calls": Count("pk"),
    "answered": Count("pk", filter=_ANSWERED),
    "handled": Count("pk", filter=_HANDLED),
    "contained": Count("pk", filter=_CONTAINED),
    "average_handle_seconds": Avg("duration_seconds", filter=_HANDLED),
}
CALL_FIGURES = ("calls", "answered", "handled", "contained", "containment_rate", "average_handle_seconds")


def _calls(scope: Q) -> QuerySet:
    transfer = CallEvent.objects.filter(call=OuterRef("pk"), kind=CallEvent.Kind.TRANSFER)
    return Call.objects.filter(scope).annotate(transferred=Exists(transfer)).order_by()


def _call_figures(row: dict | None) -> dict:
    row = row or {"calls": 0, "answered": 0, "handled": 0, "contained": 0, "average_handle_seconds": None}
    handled, average = row["handled"], row["average_handle_seconds"]
    return {
        "calls": row["calls"], "answered": row["answered"], "handled": handled, "contained": row["contained"],
        "containment_rate": round(row["contained"] / handled, 4) if handled else None,
        "average_handle_seconds": round(average, 2) if average is not None else None,
    }


# --- turns and post-call runs ---------------------------------------------------------------------

def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def _latency_by_day(scope: Q, *, stages: bool) -> dict[dt.date, dict]:
    """Per day: turns measured, voice-to-voice p50/p95 (and each stage's median) in ms."""
    turns = Turn.objects.filter(scope).order_by()
    columns = ("voice_to_voice_ms", *(LATENCY_STAGES if stages else ()))
    if _in_database():
        aggregates = {"turns_measured": Count("voice_to_voice_ms"),
                      "voice_to_voice_p50_ms": PercentileCont("voice_to_voice_ms", 0.5),
                      "voice_to_voice_p95_ms": PercentileCont("voice_to_voice_ms", 0.95)}
        if stages:
            aggregates |= {f"{stage[:-3]}_p50_ms": PercentileCont(stage, 0.5) for stage in LATENCY_STAGES}
        rows = turns.annotate(day=_day("call__started_at")).values("day").annotate(**aggregates)
        return {row.pop("day"): {k: v if k == "turns_measured" else _ms(v) for k, v in row.items()} for row in rows}
    values: dict[dt.date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for day, *timings in turns.annotate(day=_day("call__started_at")).values_list("day", *columns):
        for column, value in zip(columns, timings, strict=True):
            if value is not None:
                values[day][column].append(value)
    result = {}
    for day, by_column in values.items():
        v2v = by_column["voice_to_voice_ms"]
        row = {"turns_measured": len(v2v), "voice_to_voice_p50_ms": _ms(percentile_cont(v2v, 0.5)),
               "voice_to_voice_p95_ms": _ms(percentile_cont(v2v, 0.95))}
        if stages:
            row |= {f"{stage[:-3]}_p50_ms": _ms(percentile_cont(by_column[stage], 0.5)) for stage in LATENCY_STAGES}
        result[day] = row
    return result


def _latency_total(scope: Q) -> dict:
    """Voice-to-voice over the whole range (one set of values, not a mean of daily figures)."""
    turns = Turn.objects.filter(scope, voice_to_voice_ms__isnull=False).order_by()
    if _in_database():
        row = turns.aggregate(turns_measured=Count("pk"), p50=PercentileCont("voice_to_voice_ms", 0.5),
                              p95=PercentileCont("voice_to_voice_ms", 0.95))
        p50, p95, measured = row["p50"], row["p95"], row["turns_measured"]
    else:
        values = list(turns.values_list("voice_to_voice_ms", flat=True))
        p50, p95, measured = percentile_cont(values, 0.5), percentile_cont(values, 0.95), len(values)
    return {"turns_measured": measured, "voice_to_voice_p50_ms": _ms(p50), "voice_to_voice_p95_ms": _ms(p95)}


def _runs(scope: Q) -> QuerySet:
    """The first post-call analysis of each call in scope, once it has finished."""
    return AnalysisRun.objects.filter(scope, reason=AnalysisRun.Reason.CALL_ENDED, finished_at__isnull=False,
                                      status=AnalysisRun.Status.DONE).order_by()


def _turnaround_figures(average: float | None, p95: float | None) -> dict:
    return {"turnaround_average_seconds": None if average is None else round(max(0.0, average), 2),
            "turnaround_p95_seconds": None if p95 is None else round(max(0.0, p95), 2)}


def _turnaround(scope: Q, *, by_day: bool) -> dict:
    """{day (or None for the whole range): turnaround figures}."""
    runs = _runs(scope).annotate(day=_day("call__started_at"))
    if _in_database():
        seconds = _Seconds(ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField()))
        aggregates = {"average": Avg(seconds), "p95": PercentileCont(seconds, 0.95)}
        if by_day:
            return {row["day"]: _turnaround_figures(row["average"], row["p95"])
                    for row in runs.values("day").annotate(**aggregates)}
        row = runs.aggregate(**aggregates)
        return {None: _turnaround_figures(row["average"], row["p95"])}
    values: dict = defaultdict(list)
    for day, created, finished in runs.values_list("day", "created_at", "finished_at"):
        values[day if by_day else None].append((finished - created).total_seconds())
    return {key: _turnaround_figures(sum(v) / len(v), percentile_cont(v, 0.95)) for key, v in values.items()}


_NO_TURNAROUND = _turnaround_figures(None, None)
_NO_LATENCY = {"turns_measured": 0, "voice_to_voice_p50_ms": None, "voice_to_voice_p95_ms": None}


# --- what callers use -----------------------------------------------------------------------------

def analytics_summary(*, start: dt.date, end: dt.date, agent_id: int | None = None, channel: str | None = None) -> dict:
    """The range in one set of figures (5 queries)."""
    scope = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel)
    related = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel, prefix="call__")
    figures = _call_figures(_calls(scope).aggregate(**_CALL_AGGREGATES))
    outcomes = (Call.objects.filter(scope).order_by().values("outcome").annotate(n=Count("pk"))
                .order_by("-n", "outcome"))
    return {
        "start": start, "end": end,
        **figures,
        "outcomes": {row["outcome"] or "unknown": row["n"] for row in outcomes},
        "tickets_opened": Ticket.objects.filter(related).count(),
        **_latency_total(related),
        **_turnaround(related, by_day=False).get(None, _NO_TURNAROUND),
    }


def analytics_daily(*, start: dt.date, end: dt.date, agent_id: int | None = None,
                    channel: str | None = None) -> list[dict]:
    """One row per day from `start` to `end`, days without calls included (4 queries)."""
    scope = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel)
    related = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel, prefix="call__")
    calls = {row.pop("day"): row for row in
             _calls(scope).annotate(day=_day("started_at")).values("day").annotate(**_CALL_AGGREGATES)}
    tickets = dict(Ticket.objects.filter(related).order_by().annotate(day=_day("call__started_at"))
                   .values("day").annotate(n=Count("pk")).values_list("day", "n"))
    latency = _latency_by_day(related, stages=False)
    turnaround = _turnaround(related, by_day=True)
    return [
        {"day": day, **_call_figures(calls.get(day)), "tickets_opened": tickets.get(day, 0),
         **latency.get(day, _NO_LATENCY), **turnaround.get(day, _NO_TURNAROUND)}
        for day in _days(start, end)
    ]


def analytics_intents(*, start: dt.date, end: dt.date, agent_id: int | None = None,
                      channel: str | None = None) -> list[dict]:
    """One row per intent the calls had ("unknown": none), most calls first (1 query)."""
    scope = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel)
    rows = _calls(scope).values("intent").annotate(**_CALL_AGGREGATES).order_by("-calls", "intent")
    return [{"intent": row["intent"] or "unknown", **_call_figures(row)} for row in rows]


def analytics_latency(*, start: dt.date, end: dt.date, agent_id: int | None = None,
                      channel: str | None = None) -> list[dict]:
    """One row per day: turns measured, voice-to-voice p50/p95 and each stage's median, in ms (1 query)."""
    related = calls_in_scope(start=start, end=end, agent_id=agent_id, channel=channel, prefix="call__")
    latency = _latency_by_day(related, stages=True)
    empty = {**_NO_LATENCY, **{f"{stage[:-3]}_p50_ms": None for stage in LATENCY_STAGES}}
    return [{"day": day, **latency.get(day, empty)} for day in _days(start, end)]
