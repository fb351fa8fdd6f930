"""Tickets, written through the ticket services (SLA due times, status rules, events)."""

from rest_framework import mixins, viewsets

from tickets.models import Ticket
from tickets.serializers import TicketSerializer
from tickets.services import ticket_create, ticket_update
from voicecrm.api.permissions import RoleWritableFieldsMixin


class TicketViewSet(
    RoleWritableFieldsMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    queryset = Ticket.objects.prefetch_related("comments")
    serializer_class = TicketSerializer
    search_fields = ["reference", "subject", "description"]
    ordering_fields = ["created_at", "updated_at", "sla_due_at", "first_response_due_at"]
    # Agents work tickets end to end; the due times and stamps are the services' (read-only fields).
    role_writable_fields = {"Agent": ["customer", "category", "subject", "description", "priority", "status", "assignee"]}

    # The services own due times, resolution stamps and the ticket.created event: the serializer
    # only validates, and its save() is never called.
    def perform_create(self, serializer):
        serializer.instance = ticket_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = ticket_update(ticket=serializer.instance, **serializer.validated_data)
