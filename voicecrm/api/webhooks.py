"""Webhook endpoints and their deliveries (calls/webhooks.py; the receiver's side: docs/webhooks.md).

An endpoint decides where the CRM's data is sent, so only Supervisors create, change, test and
redeliver (the model permissions), and its URL must pass the same SSRF rules as in the admin
(public addresses only, checked again on every delivery). The signing secret is shown once, in
the answer to the creation or a rotation, and never listed back.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from calls.models import WebhookDelivery, WebhookEndpoint
from calls.serializers import (
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)
from calls.webhooks import (
    WebhookStateError,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_secret_rotate,
    webhook_test_send,
)
from voicecrm.api.common import ActionPermissions, BooleanFilter, Conflict, errors, service_error
from voicecrm.api.filters import IdFilter
from voicecrm.api.permissions import RoleWritableFieldsMixin

CHANGE = ["%(app_label)s.change_%(model_name)s"]


class WebhookEndpointFilter(filters.FilterSet):
    active = BooleanFilter(help_text="Sending (true), or disabled by a person or after failing (false).")

    class Meta:
        model = WebhookEndpoint
        fields = ["active"]


@extend_schema_view(
    list=extend_schema(description="Webhook endpoints, with their health; never their secrets (`secret_hint` says "
                                   "which one it is).", responses={200: WebhookEndpointSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One endpoint.", responses={200: WebhookEndpointSerializer, **errors(404)}),
    create=extend_schema(
        description="Add an endpoint (Supervisor). The URL must reach a public address: loopback, private, "
                    "link-local and other internal targets are a 400 (an on-premise receiver is allowed by "
                    "`WEBHOOK_ALLOWED_PRIVATE_HOSTS`). The answer holds the signing `secret`: the only time it is shown.",
        responses={201: WebhookEndpointCreatedSerializer, **errors(400, 413)},
        examples=[OpenApiExample("Analyzed calls", request_only=True, value={
            "name": "Dispatch TMS", "url": "https://tms.example.com/hooks/voicecrm", "events": ["call.analyzed"],
            "agent": "dispatch"})],
    ),
    update=extend_schema(description="Replace an endpoint's settings (Supervisor), with the same URL rules. "
                                     "Switched back on (`active`), it sends the deliveries it held.",
                         responses={200: WebhookEndpointSerializer, **errors(400, 404, 413)}),
    partial_update=extend_schema(description="Change some of an endpoint's settings (Supervisor), with the same URL "
                                             "rules. Switched back on (`active`), it sends the deliveries it held.",
                                 responses={200: WebhookEndpointSerializer, **errors(400, 404, 413)}),
    destroy=extend_schema(description="Delete an endpoint and its delivery log (Supervisor).",
                          responses={204: None, **errors(404)}),
)
class WebhookEndpointViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = WebhookEndpoint.objects.select_related("agent")
    serializer_class = WebhookEndpointSerializer
    permission_classes = [ActionPermissions]
    action_permissions = {"test": CHANGE, "rotate_secret": CHANGE}
    filterset_class = WebhookEndpointFilter
    search_fields = ["name", "url"]
    ordering_fields = ["name", "created_at", "last_failure_at"]
    ordering = ["name", "id"]
    # Only Supervisors hold the endpoint permissions; no other role writes a field.
    role_writable_fields: dict = {}

    def create(self, request, *args, **kwargs):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = webhook_endpoint_create(**serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        try:
            serializer.instance = webhook_endpoint_update(endpoint=serializer.instance, **serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None

    @extend_schema(
        description="Send a signed sample `call.started` event (`data.test` true) to the endpoint now (Supervisor), "
                    "through the same delivery path, retries and log as real events. 202 with the delivery: follow "
                    "it at `/webhook-deliveries/{id}/`. A disabled endpoint is a 409.",
        request=None, responses={202: WebhookDeliverySerializer, **errors(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        endpoint = self.get_object()
        if not endpoint.active:
            # Deliveries are held while an endpoint is disabled: a test would wait for nothing.
            raise Conflict("The endpoint is disabled: enable it first.")
        delivery = webhook_test_send(endpoint=endpoint)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        description="Give the endpoint a new signing secret (Supervisor), shown in this answer only. Requests are "
                    "signed by the old and the new secret for `WEBHOOK_SECRET_OVERLAP_HOURS` "
                    "(`previous_secret_until`), so receivers can switch over.",
        request=None, responses={200: WebhookEndpointCreatedSerializer, **errors(404)},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = webhook_secret_rotate(endpoint=self.get_object())
        return Response(WebhookEndpointCreatedSerializer(endpoint).data)


class WebhookDeliveryFilter(filters.FilterSet):
    endpoint = IdFilter()
    call = filters.UUIDFilter(field_name="call__public_id", help_text="The call's id (a UUID).")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event", "call"]


@extend_schema_view(
    list=extend_schema(description="Deliveries, newest first: one per event and endpoint, with its status and "
                                   "retries. Filter by `endpoint`, status, event and call.",
                       responses={200: WebhookDeliverySerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One delivery with the exact body it sends and its attempt log (what the "
                                       "receiver answered only for Supervisors: it is whatever the URL reached).",
                           responses={200: WebhookDeliveryDetailSerializer, **errors(404)}),
)
class WebhookDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "public_id"
    queryset = WebhookDelivery.objects.select_related("call")
    permission_classes = [ActionPermissions]
    action_permissions = {"redeliver": CHANGE}
    filterset_class = WebhookDeliveryFilter
    ordering_fields = ["created_at", "last_attempt_at"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related("attempt_log") if self.action == "retrieve" else queryset

    def get_serializer_class(self):
        return WebhookDeliveryDetailSerializer if self.action == "retrieve" else WebhookDeliverySerializer

    def get_serializer_context(self):
        # Same rule as the admin's attempt log: a receiver's answer is for those who choose where requests go.
        return {**super().get_serializer_context(),
                "show_response_bodies": self.request.user.has_perm("calls.change_webhookendpoint")}

    @extend_schema(
        description="Send a delivery again now (Supervisor), with a fresh retry window; receivers deduplicate on "
                    "the event id. One that succeeded, is being sent, or whose endpoint is disabled is a 409.",
        request=None, responses={202: WebhookDeliverySerializer, **errors(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, public_id=None):
        try:
            delivery = webhook_delivery_retry(delivery=self.get_object())
        except WebhookStateError as error:
            raise Conflict(str(error)) from None
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
