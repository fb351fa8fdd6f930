"""Customers and what they have: services, appointments, orders."""

from django_filters import rest_framework as filters
from rest_framework import viewsets

from customers.models import Appointment, Customer, Order, Service
from customers.serializers import AppointmentSerializer, CustomerSerializer, OrderSerializer, ServiceSerializer
from voicecrm.api.filters import CustomerFilter
from voicecrm.api.permissions import RoleWritableFieldsMixin


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
