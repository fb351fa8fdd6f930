"""Calls: the record of every call, live calls, transcripts and recordings; placing outbound calls
(telephony/outbound.py), hanging up (telephony/hangup.py) and re-running the post-call analysis
(calls/postcall/pipeline.py), each through the same service the admin uses."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from agents.models import AgentConfig
from calls.models import AnalysisBatch, Call, Turn
from calls.postcall.pipeline import analysis_rerun
from calls.serializers import (
    AnalysisRunSerializer,
    CallDetailSerializer,
    CallSerializer,
    LiveCallSerializer,
    ReanalyzeSerializer,
    TranscriptSerializer,
    transcript_text,
)
from calls.views import recording_response
from core.phones import normalize_phone
from telephony.base import TelephonyError
from telephony.hangup import CallNotLive, call_hang_up
from telephony.outbound import OutboundError, outbound_call_place
from telephony.serializers import OutboundCallSerializer
from voicecrm.api.common import ActionPermissions, Conflict, errors
from voicecrm.api.errors import IdempotencyConflict
from voicecrm.api.filters import CallFilter


class PhoneNetworkError(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The phone network refused the request."
    default_code = "phone_network_error"


class TranscriptTextRenderer(renderers.BaseRenderer):
    """`?format=text` or `Accept: text/plain`: the transcript one line a turn (an error: its message)."""

    media_type = "text/plain"
    format = "text"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, dict):  # an error: {"detail": …} or {"field": [...]}
            data = "\n".join(str(value if not isinstance(value, list) else " ".join(map(str, value)))
                             for value in data.values()) + "\n"
        return str(data).encode(self.charset)


class AnyAccept(BaseContentNegotiation):
    """A download answers whatever the client accepts (a media player's Accept is audio/*); its
    errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


# A call answer shows its agent's slug and name only.
AGENT_UNSHOWN = [f"agent__{field.name}" for field in AgentConfig._meta.concrete_fields
                 if field.name not in ("id", "slug", "name")]
_CALL_ID = OpenApiParameter("public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The call's id.")
_NOT_LIVE = OpenApiResponse(description="The call is not live: not in progress, or no process serves it any more, "
                                        "or its channel cannot be hung up (text chats).")


@extend_schema_view(
    list=extend_schema(description="Calls, newest first. Filter by status, channel, direction, agent (slug), "
                                   "customer, intent, outcome and start time; search numbers, intent, outcome and "
                                   "summary; order by start, end, duration or attempt."),
    retrieve=extend_schema(description="One call with its turns, events and the facts the caller shared.",
                           parameters=[_CALL_ID]),
)
class CallViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "public_id"
    # The agent with only the columns shown (its flow and schemas would be parsed for every row).
    # The retried attempts' ids in one more query for the page: a join would pair every call in
    # the filter with its retry before a sort picks the page.
    queryset = (Call.objects.select_related("agent").defer(*AGENT_UNSHOWN)
                .prefetch_related(Prefetch("retry_of", queryset=Call.objects.only("id", "public_id"))))
    filterset_class = CallFilter
    permission_classes = [ActionPermissions]
    # Placing and hanging up calls is the place_call permission (Supervisors, Agents); re-running
    # the analysis changes the call's data (Supervisors). Reads need view_call.
    action_permissions = {"create": ["calls.place_call"], "hangup": ["calls.place_call"],
                          "reanalyze": ["calls.change_call"]}
    search_fields = ["from_number", "to_number", "provider_call_id", "intent", "outcome", "summary"]
    ordering_fields = ["started_at", "ended_at", "duration_seconds", "attempt"]
    MAX_IDEMPOTENCY_KEY = 100

    def get_serializer_class(self):
        return {"create": OutboundCallSerializer, "retrieve": CallDetailSerializer, "live": LiveCallSerializer,
                "transcript": TranscriptSerializer, "reanalyze": ReanalyzeSerializer}.get(self.action, CallSerializer)

    def get_serializer_context(self) -> dict:
        # The phone network's messages name hosts, paths and settings: for those who run the lines.
        user = getattr(self.request, "user", None)
        show = bool(user and user.is_authenticated and user.has_perm("calls.change_call"))
        return {**super().get_serializer_context(), "show_provider_error": show}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("turns", "events", "information")
        elif self.action == "live":
            queryset = (Call.objects.filter(status=Call.Status.IN_PROGRESS).select_related("agent", "customer")
                        .defer(*AGENT_UNSHOWN)
                        .annotate(turn_count=Count("turns")).order_by("started_at"))
        elif self.action == "transcript":
            turns = Prefetch("turns", queryset=Turn.objects.order_by("index"), to_attr="ordered_turns")
            queryset = Call.objects.select_related("final_transcript").prefetch_related(turns)
        elif self.action == "recording":
            queryset = Call.objects.only("id", "public_id", "recording")
        return queryset

    @extend_schema(
        request=OutboundCallSerializer,
        responses={202: CallSerializer, **errors(400, 409)},
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
            description="Up to 100 printable characters: a retried request with the same key (and the same agent "
                        "and number) returns the call the first one made and dials nothing.",
        )],
        examples=[OpenApiExample("Driver check-in", request_only=True, value={
            "agent": "dispatch", "to": "+14155550123", "variables": {"driver_name": "Sam", "load_number": "L-1042"}})],
    )
    def create(self, request, *args, **kwargs):
        """Place an outbound call: 202 with the queued Call; it is dialed in the background.

        With an Idempotency-Key header a retried request returns the Call the first one made and
        dials nothing (the same key with a different agent or number: 409).
        """
        serializer = OutboundCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > self.MAX_IDEMPOTENCY_KEY or not key.isprintable():
            raise ApiValidationError({"Idempotency-Key": [f"At most {self.MAX_IDEMPOTENCY_KEY} printable characters."]})
        request_key = f"{request.user.pk}:{key}" if key else ""
        try:
            call = outbound_call_place(agent=data["agent"], to=data["to"], variables=data["variables"],
                                       channel=data["channel"], request_key=request_key)
        except OutboundError as error:
            raise ApiValidationError(error.message_dict) from None
        if request_key and (call.agent_id != data["agent"].pk or not _same_number(call.to_number, data["to"])):
            raise IdempotencyConflict()
        return Response(CallSerializer(call, context=self.get_serializer_context()).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: LiveCallSerializer(many=True), **errors(400)})
    @action(detail=False)
    def live(self, request):
        """Calls in progress now, longest first: their agent, the caller, the customer once identified,
        and the duration so far. The list's filters apply (e.g. `?agent=dispatch&channel=twilio`)."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(LiveCallSerializer(page, many=True, context=self.get_serializer_context())
                                           .data)

    @extend_schema(
        parameters=[_CALL_ID, OpenApiParameter("format", str, enum=["json", "text"], required=False,
                                               description="`text`: one line a turn (also `Accept: text/plain`).")],
        responses={(200, "application/json"): TranscriptSerializer, (200, "text/plain"): OpenApiTypes.STR,
                   **errors(404)},
        examples=[OpenApiExample("Plain text", response_only=True, media_type="text/plain", value=(
            "[00:00] Agent: Hi, this is dispatch. Is this Sam?\n[00:04] Caller: Yes, speaking.\n"
            "[00:06] Agent (interrupted): Great, I'm calling about load\n[00:08] Caller: I'm running late.\n"))],
    )
    @action(detail=True, renderer_classes=[renderers.JSONRenderer, TranscriptTextRenderer])
    def transcript(self, request, public_id=None):
        """The call's turns as they happened: speaker, text, what the caller heard of an interrupted
        reply, and each turn's timings; with the post-call transcript of the recording once made."""
        call = self.get_object()
        if request.accepted_renderer.format == TranscriptTextRenderer.format:
            return Response(transcript_text(call.ordered_turns), content_type="text/plain; charset=utf-8")
        return Response(TranscriptSerializer(call, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[_CALL_ID, OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False,
                                               description="One byte range, e.g. `bytes=0-65535`.")],
        responses={(200, "audio/wav"): OpenApiTypes.BINARY, (206, "audio/wav"): OpenApiResponse(
            OpenApiTypes.BINARY, description="The byte range asked for (Content-Range)."),
                   **errors(404), 416: OpenApiResponse(description="The range starts past the end of the file.")},
    )
    @action(detail=True, content_negotiation_class=AnyAccept)
    def recording(self, request, public_id=None):
        """Download the call's stereo WAV recording (caller left, agent right), with HTTP Range
        support for seeking; 404 when the call has none. Sent by the proxy when RECORDINGS_SENDFILE
        is set."""
        return recording_response(request._request, self.get_object())

    @extend_schema(request=None, parameters=[_CALL_ID],
                   responses={202: CallSerializer, **errors(404), 409: _NOT_LIVE,
                              502: OpenApiResponse(description="The phone network refused to hang up (`detail`); "
                                                               "the call's voice session still ends it.")})
    @action(detail=True, methods=["post"])
    def hangup(self, request, public_id=None):
        """Hang up a live call (needs the place-call permission: Supervisors and Agents). A phone call
        is ended through its network at once; a browser call by the process serving it, within
        CALL_HEARTBEAT_SECONDS. 202: asked; the call's status changes once it has ended."""
        call = self.get_object()
        try:
            call_hang_up(call=call, requested_by=request.user.get_username())
        except CallNotLive as refusal:
            raise Conflict(refusal.message) from None
        except TelephonyError as error:
            raise PhoneNetworkError(f"The phone network could not hang up: {error.message}") from None
        return Response(CallSerializer(call, context=self.get_serializer_context()).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReanalyzeSerializer, parameters=[_CALL_ID],
                   responses={202: AnalysisRunSerializer, **errors(400, 404),
                              409: OpenApiResponse(description="The call has not ended, or an analysis is already "
                                                               "under way.")})
    @action(detail=True, methods=["post"])
    def reanalyze(self, request, public_id=None):
        """Run the post-call analysis again, as the admin's "Re-run analysis" action does (Supervisors):
        every stage, or with `{"kind": "reextract"}` extraction with the agent's current schema and
        what follows it. 202 with the queued run; the call's `analysis_status` follows it."""
        call = self.get_object()
        serializer = ReanalyzeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kind = AnalysisBatch.Kind.REEXTRACT if serializer.validated_data["kind"] == "reextract" else AnalysisBatch.Kind.RERUN
        batch, skipped = analysis_rerun(calls=[call], kind=kind, user=request.user)
        if skipped:
            raise Conflict(skipped[0].split(": ", 1)[-1].capitalize() + ".")
        run = batch.runs.select_related("call").get()
        return Response(AnalysisRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _same_number(stored: str, sent: str) -> bool:
    """The number an earlier request stored, sent again in any format (or the same extension)."""
    if stored == sent.strip():
        return True
    try:
        return normalize_phone(sent) == stored
    except DjangoValidationError:
        return False
