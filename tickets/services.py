"""Ticket writes: creation with SLA, comments that count as a first response, status changes."""

from django.db import transaction
from django.utils import timezone

from tickets.models import Priority, Ticket, TicketComment


@transaction.atomic
def ticket_create(
    *,
    subject: str,
    description: str = "",
    category: str = Ticket.Category.OTHER,
    priority: str = Priority.NORMAL,
    customer=None,
    call=None,
) -> Ticket:
    ticket = Ticket(
        subject=subject[:200], description=description, category=category, priority=priority,
        customer=customer, call=call, created_at=timezone.now(),
    )
    ticket.apply_sla()
    ticket.full_clean(exclude=["reference"])
    ticket.save()
    return ticket


@transaction.atomic
def ticket_comment_add(*, ticket: Ticket, author, body: str, internal: bool = False) -> TicketComment:
    comment = TicketComment.objects.create(ticket=ticket, author=author, body=body, internal=internal)
    # The first public reply by a person stops the first-response clock.
    if author is not None and not internal:
        Ticket.objects.filter(pk=ticket.pk, first_responded_at__isnull=True).update(first_responded_at=comment.created_at)
        ticket.refresh_from_db(fields=["first_responded_at"])
    return comment


def ticket_set_priority(*, ticket: Ticket, priority: str) -> Ticket:
    """A new priority moves the due times, measured from when the ticket was opened."""
    ticket.priority = priority
    ticket.apply_sla()
    ticket.save(update_fields=["priority", "first_response_due_at", "sla_due_at", "updated_at"])
    return ticket
