"""Customers and what they have: services, appointments, orders."""

from rest_framework import viewsets

from customers.models import Appointment, Customer, Order, Service
from customers.serializers import AppointmentSerializer, CustomerSerializer, OrderSerializer, ServiceSerializer
from voicecrm.api.filters import CustomerFilter
from voicecrm.api.permissions import RoleWritableFieldsMixin


class CustomerViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["first_name", "last_name", "account_number", "phone", "email", "company", "postcode"]
    ordering_fields = ["last_name", "first_name", "account_number", "balance", "created_at", "updated_at"]
    # An Agent keeps contact details and notes up to date; the account number, plan, status and
    # balance are the Supervisor's (identifiers callers verify with, and money).
    role_writable_fields = {"Agent": ["first_name", "last_name", "phone", "email", "company", "postcode", "notes"]}


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Service.objects.filter(active=True)
    serializer_class = ServiceSerializer
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "duration_minutes", "price"]


class AppointmentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Appointment.objects.select_related("customer", "service")
    serializer_class = AppointmentSerializer
    search_fields = ["customer__first_name", "customer__last_name", "service__name", "notes"]
    ordering_fields = ["starts_at", "created_at"]


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    search_fields = ["number", "tracking_number"]
    ordering_fields = ["placed_at", "total", "number"]
