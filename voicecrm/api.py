"""The REST API: one router for every app (expiring hashed tokens, role permissions, validated input)."""

from django import forms
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from knox import views as knox_views
from rest_framework import mixins, routers, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import APIException, ParseError
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler

from calls.models import Call
from calls.serializers import CallDetailSerializer, CallSerializer
from core.phones import normalize_phone
from customers.models import Appointment, Customer, Order, Service
from customers.serializers import AppointmentSerializer, CustomerSerializer, OrderSerializer, ServiceSerializer
from telephony.outbound import OutboundError, outbound_call_place
from telephony.serializers import OutboundCallSerializer
from tickets.models import Ticket
from tickets.serializers import TicketSerializer
from tickets.services import ticket_create, ticket_update
from voicecrm.api_permissions import RoleWritableFieldsMixin

# --- Query parameters: a FilterSet per list, so a bad value is a 400 naming the parameter ----------
# (A raw .filter() turned "abc" for an id, an unparsable phone or a NUL byte into a 500.)


class PhoneFormField(forms.CharField):
    """Reads a phone number in any format into E.164, as Customer.phone stores it."""

    def to_python(self, value):
        return normalize_phone(super().to_python(value))


class PhoneFilter(filters.CharFilter):
    field_class = PhoneFormField


class IdFilter(filters.NumberFilter):
    """A row id: a whole number in PostgreSQL's bigint range (NumberFilter alone takes decimals)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class CustomerFilter(filters.FilterSet):
    phone = PhoneFilter()
    account_number = filters.CharFilter()

    class Meta:
        model = Customer
        fields = ["phone", "account_number"]


class CallFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer")

    class Meta:
        model = Call
        # status and channel are choices (an unknown value is a 400); intent is free text.
        fields = ["status", "channel", "intent", "customer"]


# --- Viewsets ------------------------------------------------------------------------------------


class CustomerViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = CustomerFilter
    # An Agent keeps contact details and notes up to date; the account number, plan, status and
    # balance are the Supervisor's (identifiers callers verify with, and money).
    role_writable_fields = {"Agent": ["first_name", "last_name", "phone", "email", "company", "postcode", "notes"]}


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Service.objects.filter(active=True)
    serializer_class = ServiceSerializer


class AppointmentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Appointment.objects.select_related("customer", "service")
    serializer_class = AppointmentSerializer


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer


class CanPlaceCalls(BasePermission):
    message = "Your role cannot place calls."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("calls.place_call")


class IdempotencyConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This Idempotency-Key was already used for a different call."
    default_code = "idempotency_conflict"


class CallViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "public_id"
    queryset = Call.objects.select_related("agent")
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = CallFilter
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


class TicketViewSet(
    RoleWritableFieldsMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    queryset = Ticket.objects.prefetch_related("comments")
    serializer_class = TicketSerializer
    # Agents work tickets end to end; the due times and stamps are the services' (read-only fields).
    role_writable_fields = {"Agent": ["customer", "category", "subject", "description", "priority", "status", "assignee"]}

    # The services own due times, resolution stamps and the ticket.created event: the serializer
    # only validates, and its save() is never called.
    def perform_create(self, serializer):
        serializer.instance = ticket_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = ticket_update(ticket=serializer.instance, **serializer.validated_data)


# --- Tokens ----------------------------------------------------------------------------------------


@extend_schema(
    request=AuthTokenSerializer,
    responses={200: inline_serializer("Token", {"expiry": drf_serializers.DateTimeField(),
                                                "token": drf_serializers.CharField()}), 400: None, 429: None},
    description="Exchange a username and password for a token that expires. Send it as `Authorization: Token <token>`.",
)
class TokenLoginView(knox_views.LoginView):
    """POST username and password, get a token that expires (REST_KNOX["TOKEN_TTL"]); only its digest is stored.

    The credentials are the only authentication here (no session, so no CSRF), and the view has the
    strict `api_login` throttle scope on top of the anonymous rate: password guessing is slowed per IP.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "api_login"

    def post(self, request, format=None):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        return super().post(request, format=format)


@extend_schema(request=None, responses={204: None, 401: None}, description="Revoke the token sent with this request.")
class TokenLogoutView(knox_views.LogoutView):
    pass


@extend_schema(request=None, responses={204: None, 401: None}, description="Revoke every token of the signed-in user.")
class TokenLogoutAllView(knox_views.LogoutAllView):
    pass


# --- Errors ----------------------------------------------------------------------------------------


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    default_code = "payload_too_large"


def api_exception_handler(exc, context):
    """DRF's handler, plus Django's request-size errors as JSON: a 413 for a body over the limit
    (Django itself answers an HTML 400), a 400 for too many form fields or files."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = ParseError(str(exc))
    return exception_handler(exc, context)


router = routers.DefaultRouter()
router.register("customers", CustomerViewSet)
router.register("services", ServiceViewSet)
router.register("appointments", AppointmentViewSet)
router.register("orders", OrderViewSet)
router.register("calls", CallViewSet)
router.register("tickets", TicketViewSet)

urlpatterns = [
    path("auth/login/", TokenLoginView.as_view(), name="api-login"),
    path("auth/logout/", TokenLogoutView.as_view(), name="api-logout"),
    path("auth/logoutall/", TokenLogoutAllView.as_view(), name="api-logout-all"),
    *router.urls,
]
