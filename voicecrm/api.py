"""The REST API: one router for every app (token or session auth, role permissions)."""

from rest_framework import mixins, routers, viewsets

from calls.models import Call
from calls.serializers import CallDetailSerializer, CallSerializer
from customers.models import Appointment, Customer, Order, Service
from customers.serializers import AppointmentSerializer, CustomerSerializer, OrderSerializer, ServiceSerializer
from tickets.models import Ticket
from tickets.serializers import TicketSerializer
from tickets.services import ticket_create, ticket_update


class CustomerViewSet(viewsets.ModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if phone := self.request.query_params.get("phone"):
            queryset = queryset.filter(phone=phone)
        if account := self.request.query_params.get("account_number"):
            queryset = queryset.filter(account_number=account)
        return queryset


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Service.objects.filter(active=True)
    serializer_class = ServiceSerializer


class AppointmentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Appointment.objects.select_related("customer", "service")
    serializer_class = AppointmentSerializer


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer


class CallViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "public_id"
    queryset = Call.objects.select_related("agent")

    def get_serializer_class(self):
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("turns", "events", "information")
        for param in ("status", "channel", "intent", "customer"):
            if value := self.request.query_params.get(param):
                queryset = queryset.filter(**{param: value})
        return queryset


class TicketViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    queryset = Ticket.objects.prefetch_related("comments")
    serializer_class = TicketSerializer

    # The services own due times, resolution stamps and the ticket.created event: the serializer
    # only validates, and its save() is never called.
    def perform_create(self, serializer):
        serializer.instance = ticket_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = ticket_update(ticket=serializer.instance, **serializer.validated_data)


router = routers.DefaultRouter()
router.register("customers", CustomerViewSet)
router.register("services", ServiceViewSet)
router.register("appointments", AppointmentViewSet)
router.register("orders", OrderViewSet)
router.register("calls", CallViewSet)
router.register("tickets", TicketViewSet)

urlpatterns = router.urls
