"""Customers and what they have: services, appointments, orders. Writes go through
customers/services.py, the same functions the admin's rules and the agent's tools use."""

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from customers.models import Appointment, Customer, Order, Service
from customers.serializers import (
    AppointmentCreateSerializer,
    AppointmentRescheduleSerializer,
    AppointmentSerializer,
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    CustomerSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    ServiceSerializer,
)
from customers.services import (
    BOOKING_HORIZON,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    customer_create,
    customer_update,
    order_create,
    service_available_slots,
)
from voicecrm.api import filters as api_filters
from voicecrm.api.common import ActionPermissions, BooleanFilter, Conflict, errors, service_error
from voicecrm.api.filters import IdFilter
from voicecrm.api.permissions import RoleWritableFieldsMixin

# --- Customers ---------------------------------------------------------------------------------------


class CustomerFilter(api_filters.CustomerFilter):
    name = filters.CharFilter(method="filter_name", max_length=160,
                              help_text="Every word in the first or last name, any case (`ada love`).")
    email = filters.CharFilter(lookup_expr="iexact")

    class Meta(api_filters.CustomerFilter.Meta):
        fields = ["phone", "account_number", "name", "email", "status", "plan"]

    def filter_name(self, queryset, name, value):
        for word in value.split():
            queryset = queryset.filter(Q(first_name__icontains=word) | Q(last_name__icontains=word))
        return queryset


@extend_schema_view(
    list=extend_schema(description="Customers, by last and first name. Look one up by `phone` (any format), "
                                   "`account_number` or `name`, or `?search=` over names, numbers, email and company.",
                       responses={200: CustomerSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One customer.", responses={200: CustomerSerializer, **errors(404)}),
    create=extend_schema(description="Open a customer record. An Agent sets contact details and notes; the account "
                                     "number (else a new random one), plan, status and balance are a Supervisor's.",
                         responses={201: CustomerSerializer, **errors(400, 413)},
                         examples=[OpenApiExample("New customer", request_only=True, value={
                             "first_name": "Ada", "last_name": "Lovelace", "phone": "(415) 555-0123",
                             "email": "ada@example.com", "postcode": "94103"})]),
    update=extend_schema(description="Replace a customer's editable fields (same role rules as creation).",
                         responses={200: CustomerSerializer, **errors(400, 404, 413)}),
    partial_update=extend_schema(description="Change some of a customer's fields (same role rules as creation).",
                                 responses={200: CustomerSerializer, **errors(400, 404, 413)}),
    destroy=extend_schema(description="Delete a customer with their appointments and orders (Supervisor). Their "
                                      "calls and tickets stay, without the customer.",
                          responses={204: None, **errors(404)}),
)
class CustomerViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["account_number", "first_name", "last_name", "phone", "email", "company", "postcode"]
    ordering_fields = ["last_name", "first_name", "account_number", "created_at", "updated_at", "balance"]
    ordering = ["last_name", "first_name", "id"]
    # An Agent keeps contact details and notes up to date; the account number, plan, status and
    # balance are the Supervisor's (identifiers callers verify with, and money).
    role_writable_fields = {"Agent": ["first_name", "last_name", "phone", "email", "company", "postcode", "notes"]}

    def perform_create(self, serializer):
        # The API opens active customers unless told otherwise (the agent's tool opens prospects).
        data = {"status": Customer.Status.ACTIVE, **serializer.validated_data}
        try:
            serializer.instance = customer_create(**data)
        except DjangoValidationError as error:
            raise service_error(error) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = customer_update(customer=serializer.instance, **serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None


# --- Services ----------------------------------------------------------------------------------------


class ServiceFilter(filters.FilterSet):
    active = BooleanFilter(help_text="Bookable (true) or retired (false).")

    class Meta:
        model = Service
        fields = ["active", "slug"]


@extend_schema_view(
    list=extend_schema(description="What customers can book, with opening hours. `?active=true` for the bookable "
                                   "ones.", responses={200: ServiceSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One service with its opening hours.",
                           responses={200: ServiceSerializer, **errors(404)}),
)
class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Service.objects.prefetch_related("opening_hours")
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "price", "duration_minutes"]
    ordering = ["name", "id"]


# --- Appointments ------------------------------------------------------------------------------------


class AppointmentFilter(filters.FilterSet):
    customer = IdFilter()
    service = IdFilter()
    starts_after = api_filters.IsoDateTimeFilter(field_name="starts_at", lookup_expr="gte")
    starts_before = api_filters.IsoDateTimeFilter(field_name="starts_at", lookup_expr="lt")

    class Meta:
        model = Appointment
        fields = ["customer", "service", "status", "starts_after", "starts_before"]


def _day_bounds() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    # Yesterday too: a client west of the business may still be on it.
    return today - dt.timedelta(days=1), today + BOOKING_HORIZON


@extend_schema_view(
    list=extend_schema(description="Appointments, soonest first; filter by customer, service, status and start.",
                       responses={200: AppointmentSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One appointment.", responses={200: AppointmentSerializer, **errors(404)}),
    create=extend_schema(
        description="Book an appointment (Supervisor, Agent), as the agent's `create_appointment` tool does: the "
                    "service's duration sets the end, and a past, closed, fully booked or clashing time is a 400 "
                    "on `starts_at`. Check free times with `availability` first.",
        request=AppointmentCreateSerializer, responses={201: AppointmentSerializer, **errors(400, 413)},
        examples=[OpenApiExample("Repair visit", request_only=True, value={
            "customer": 12, "service": 3, "starts_at": "2027-01-11T10:00:00-08:00", "notes": "Side door."})],
    ),
)
class AppointmentViewSet(RoleWritableFieldsMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Appointment.objects.select_related("source_call")
    serializer_class = AppointmentSerializer
    permission_classes = [ActionPermissions]
    action_permissions = {
        "reschedule": ["%(app_label)s.change_%(model_name)s"],
        "cancel": ["%(app_label)s.change_%(model_name)s"],
        "availability": ["customers.view_service", "%(app_label)s.view_%(model_name)s"],
    }
    filterset_class = AppointmentFilter
    search_fields = ["customer__account_number", "customer__first_name", "customer__last_name", "service__name",
                     "notes"]
    ordering_fields = ["starts_at", "created_at"]
    ordering = ["starts_at", "id"]
    # Supervisors and Agents book, move and cancel (the Agent role has no delete: cancel instead).
    role_writable_fields = {"Agent": ["customer", "service", "starts_at", "notes"]}

    def get_serializer_class(self):
        return {"create": AppointmentCreateSerializer, "reschedule": AppointmentRescheduleSerializer}.get(
            self.action, AppointmentSerializer)

    def create(self, request, *args, **kwargs):
        serializer = AppointmentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            appointment = appointment_book(**serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error, field="starts_at") from None
        return Response(AppointmentSerializer(appointment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        description="Move an appointment to a new time (Supervisor, Agent), as the agent's `reschedule_appointment` "
                    "tool does; its status becomes `rescheduled`. A time that cannot be booked is a 400 on "
                    "`starts_at`; a cancelled, completed or missed appointment is a 409.",
        request=AppointmentRescheduleSerializer, responses={200: AppointmentSerializer, **errors(400, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def reschedule(self, request, pk=None):
        appointment = self.get_object()
        serializer = AppointmentRescheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            appointment = appointment_reschedule(appointment=appointment, **serializer.validated_data)
        except DjangoValidationError as error:
            if getattr(error, "code", None) == "inactive":
                raise Conflict("; ".join(error.messages)) from None
            raise service_error(error, field="starts_at") from None
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        description="Cancel an appointment (Supervisor, Agent), freeing its place; it stays listed as `cancelled`. "
                    "One already cancelled, completed or missed is a 409.",
        request=None, responses={200: AppointmentSerializer, **errors(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            appointment = appointment_cancel(appointment=self.get_object())
        except DjangoValidationError as error:
            raise Conflict("; ".join(error.messages)) from None
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        description="Free start times of a service on a day, on a grid of its duration, inside its opening hours "
                    "and below its capacity; past times are left out. The day is in the business time zone, "
                    f"from yesterday up to {BOOKING_HORIZON.days} days ahead.",
        parameters=[
            OpenApiParameter("service", OpenApiTypes.INT, required=True, description="An active service's id."),
            OpenApiParameter("day", OpenApiTypes.DATE, required=True, description="YYYY-MM-DD."),
        ],
        responses={200: AvailabilitySerializer, **errors(400)},
        examples=[OpenApiExample("Two free hours", response_only=True, value={
            "service": 3, "day": "2027-01-11", "slots": [
                {"starts_at": "2027-01-11T09:00:00-08:00", "ends_at": "2027-01-11T10:00:00-08:00"},
                {"starts_at": "2027-01-11T14:00:00-08:00", "ends_at": "2027-01-11T15:00:00-08:00"}]})],
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def availability(self, request):
        query = AvailabilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        service, day = query.validated_data["service"], query.validated_data["day"]
        first, last = _day_bounds()
        if not first <= day <= last:
            raise ValidationError({"day": [f"Pick a day from {first} to {last}."]})
        slots = service_available_slots(service=service, day=day)
        return Response(AvailabilitySerializer({
            "service": service.pk, "day": day,
            "slots": [{"starts_at": start, "ends_at": start + service.duration} for start in slots],
        }).data)


# --- Orders ------------------------------------------------------------------------------------------


class OrderFilter(filters.FilterSet):
    customer = IdFilter()
    number = filters.CharFilter(lookup_expr="iexact")
    placed_after = api_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = api_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["customer", "number", "status", "placed_after", "placed_before"]


@extend_schema_view(
    list=extend_schema(description="Orders, newest first; filter by customer, number, status and date.",
                       responses={200: OrderSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One order.", responses={200: OrderSerializer, **errors(404)}),
    create=extend_schema(
        description="Record an order (Supervisor). Without a `total`, it is the sum of qty × price; without a "
                    "`number`, a new one (ORD and 8 digits, which callers read out to the agent).",
        request=OrderCreateSerializer, responses={201: OrderSerializer, **errors(400, 413)},
        examples=[OpenApiExample("A router", request_only=True, value={
            "customer": 12, "items": [{"sku": "RTR", "name": "Router", "qty": 1, "price": "129.00"}]})],
    ),
)
class OrderViewSet(RoleWritableFieldsMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    search_fields = ["number", "tracking_number", "customer__account_number", "customer__last_name"]
    ordering_fields = ["placed_at", "total", "number"]
    ordering = ["-placed_at", "-id"]

    def get_serializer_class(self):
        return OrderCreateSerializer if self.action == "create" else OrderSerializer

    def create(self, request, *args, **kwargs):
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            order = order_create(**serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)
