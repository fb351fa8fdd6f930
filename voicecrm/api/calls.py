"""Calls: the record of every call, and placing outbound ones (telephony/outbound.py)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from calls.models import Call
from calls.serializers import CallDetailSerializer, CallSerializer
from core.phones import normalize_phone
from telephony.outbound import OutboundError, outbound_call_place
from telephony.serializers import OutboundCallSerializer
from voicecrm.api.errors import IdempotencyConflict
from voicecrm.api.filters import CallFilter


class CanPlaceCalls(BasePermission):
    message = "Your role cannot place calls."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("calls.place_call")




class CallViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "public_id"
    queryset = Call.objects.select_related("agent")
    filterset_class = CallFilter
    search_fields = ["from_number", "to_number", "provider_call_id", "intent", "outcome", "summary"]
    ordering_fields = ["started_at", "ended_at", "duration_seconds"]
    MAX_IDEMPOTENCY_KEY = 100

    def get_serializer_class(self):
        if self.action == "create":
            return OutboundCallSerializer
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer

    def get_permissions(self):
        if self.action == "create":
            return [CanPlaceCalls()]
        return super().get_permissions()

    @extend_schema(
        request=OutboundCallSerializer,
        responses={202: CallSerializer, 400: None, 401: None, 403: None, 409: None},
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
        return Response(CallSerializer(call, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("turns", "events", "information")
        return queryset


def _same_number(stored: str, sent: str) -> bool:
    """The number an earlier request stored, sent again in any format (or the same extension)."""
    if stored == sent.strip():
        return True
    try:
        return normalize_phone(sent) == stored
    except DjangoValidationError:
        return False
