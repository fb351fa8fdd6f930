"""Reads of tickets."""

from __future__ import annotations

from django.db.models import QuerySet

from tickets.models import Ticket


def ticket_list_open_for_customer(*, customer_id: int, limit: int = 3) -> QuerySet[Ticket]:
    """A customer's open tickets, newest first."""
    return Ticket.objects.filter(customer_id=customer_id, status__in=Ticket.OPEN_STATUSES).order_by("-created_at")[:limit]
