"""Analytics over calls (calls/analytics.py): a summary, per day, per intent, latency per day."""

import datetime as dt

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from calls import analytics
from calls.serializers import (
    AnalyticsDailySerializer,
    AnalyticsIntentsSerializer,
    AnalyticsLatencySerializer,
    AnalyticsQuerySerializer,
    AnalyticsSummarySerializer,
)
from voicecrm.api.common import errors

DEFAULT_DAYS = 30


class CanViewCalls(BasePermission):
    message = "Your role cannot read calls."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("calls.view_call")


_ERRORS = errors(400)
_SUMMARY_EXAMPLE = OpenApiExample("November, one agent", response_only=True, value={
    "start": "2026-11-01", "end": "2026-11-30", "calls": 412, "answered": 398, "handled": 396, "contained": 351,
    "containment_rate": 0.8864, "average_handle_seconds": 143.7, "outcomes": {"resolved": 301, "ticket": 62,
                                                                               "unknown": 49},
    "tickets_opened": 64, "turns_measured": 5120, "voice_to_voice_p50_ms": 471, "voice_to_voice_p95_ms": 812,
    "turnaround_average_seconds": 6.4, "turnaround_p95_seconds": 11.9})


@extend_schema_view(
    summary=extend_schema(parameters=[AnalyticsQuerySerializer], responses={200: AnalyticsSummarySerializer, **_ERRORS},
                          examples=[_SUMMARY_EXAMPLE]),
    daily=extend_schema(parameters=[AnalyticsQuerySerializer], responses={200: AnalyticsDailySerializer, **_ERRORS}),
    intents=extend_schema(parameters=[AnalyticsQuerySerializer],
                          responses={200: AnalyticsIntentsSerializer, **_ERRORS}),
    latency=extend_schema(parameters=[AnalyticsQuerySerializer],
                          responses={200: AnalyticsLatencySerializer, **_ERRORS}),
)
class AnalyticsViewSet(viewsets.ViewSet):
    """Figures over the calls that started in a date range (`?from=&to=`, ISO dates, both included,
    at most 366 days; default the last 30), optionally of one agent (`?agent=<slug>`) and channel
    (`?channel=`). Every role that reads calls reads these."""

    permission_classes = [CanViewCalls]

    def _scope(self, request) -> dict:
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        end = params.get("to") or timezone.localdate()
        start = params.get("from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            raise ValidationError({"to": ["The range ends before it starts (`to` is before `from`)."]})
        if (end - start).days + 1 > analytics.MAX_DAYS:
            raise ValidationError({"from": [f"At most {analytics.MAX_DAYS} days at once."]})
        agent = params.get("agent")
        return {"start": start, "end": end, "agent_id": agent.pk if agent else None,
                "channel": params.get("channel") or None}

    @action(detail=False)
    def summary(self, request):
        """Calls, answered, containment, outcomes, average handle time, tickets opened, voice-to-voice
        p50/p95 and post-call turnaround over the whole range."""
        return Response(AnalyticsSummarySerializer(analytics.analytics_summary(**self._scope(request))).data)

    @action(detail=False)
    def daily(self, request):
        """The summary's figures (outcomes aside) for each day of the range, days without calls included."""
        scope = self._scope(request)
        data = {"start": scope["start"], "end": scope["end"], "results": analytics.analytics_daily(**scope)}
        return Response(AnalyticsDailySerializer(data).data)

    @action(detail=False)
    def intents(self, request):
        """Calls, containment and handle time per intent the calls had, most calls first."""
        scope = self._scope(request)
        data = {"start": scope["start"], "end": scope["end"], "results": analytics.analytics_intents(**scope)}
        return Response(AnalyticsIntentsSerializer(data).data)

    @action(detail=False)
    def latency(self, request):
        """Voice-to-voice p50/p95 and each stage's median per day, in milliseconds (Turn timings)."""
        scope = self._scope(request)
        data = {"start": scope["start"], "end": scope["end"], "results": analytics.analytics_latency(**scope)}
        return Response(AnalyticsLatencySerializer(data).data)
