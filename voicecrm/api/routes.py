"""Routes: which phone number, Asterisk extension or browser widget key reaches which agent.
Supervisors write them (through telephony/services.py, with the model's rules); others read."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets

from telephony.models import Route
from telephony.serializers import RouteSerializer
from telephony.services import route_create, route_update
from voicecrm.api.common import BooleanFilter, errors, service_error
from voicecrm.api.permissions import RoleWritableFieldsMixin


class RouteFilter(filters.FilterSet):
    agent = filters.CharFilter(field_name="agent__slug", max_length=50, help_text="The agent's slug.")
    active = BooleanFilter()

    class Meta:
        model = Route
        fields = ["kind", "agent", "active"]


@extend_schema_view(
    list=extend_schema(description="Routes by kind and address; filter by kind, agent (slug) and active.",
                       responses={200: RouteSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One route.", responses={200: RouteSerializer, **errors(404)}),
    create=extend_schema(
        description="Add a route (Supervisor). A phone number in any format is stored in E.164; an extension is "
                    "digits, * and #; a widget key left empty is generated; each origin is a scheme and host. An "
                    "address already routed for its kind is a 400.",
        responses={201: RouteSerializer, **errors(400, 413)},
        examples=[
            OpenApiExample("Twilio number", request_only=True, value={
                "kind": "phone_number", "address": "(415) 555-0100", "agent": "reception", "label": "Main line"}),
            OpenApiExample("Widget key", request_only=True, value={
                "kind": "widget_key", "agent": "reception", "allowed_origins": ["https://shop.example"]}),
        ],
    ),
    update=extend_schema(description="Replace a route (Supervisor), with the same rules as creation.",
                         responses={200: RouteSerializer, **errors(400, 404, 413)}),
    partial_update=extend_schema(description="Change some of a route's fields (Supervisor); the whole route is "
                                             "checked again.", responses={200: RouteSerializer, **errors(400, 404, 413)}),
    destroy=extend_schema(description="Delete a route (Supervisor): its number, extension or key reaches no agent.",
                          responses={204: None, **errors(404)}),
)
class RouteViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = Route.objects.select_related("agent")
    serializer_class = RouteSerializer
    filterset_class = RouteFilter
    search_fields = ["address", "label", "agent__slug", "agent__name"]
    ordering_fields = ["kind", "address", "created_at"]
    ordering = ["kind", "address", "id"]
    # Only Supervisors hold the route permissions; no other role writes a field.
    role_writable_fields: dict = {}

    # The (kind, address) constraint is reported for the whole route: it is about the address.
    def perform_create(self, serializer):
        try:
            serializer.instance = route_create(**serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error, field="address") from None

    def perform_update(self, serializer):
        try:
            serializer.instance = route_update(route=serializer.instance, **serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error, field="address") from None
