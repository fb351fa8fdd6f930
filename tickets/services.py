"""Ticket writes: creation with SLA, edits that keep due times and resolution stamps right, comments
that count as a first response. Every entry point (admin, API, agent tools, post-call actions) uses these."""

from typing import Any, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone

from tickets.models import Priority, Ticket, TicketComment
from tickets.signals import ticket_created


class TicketChanges(TypedDict, total=False):
    """What a person or a rule may set on an existing ticket; due times and resolution follow from these."""

    subject: str
    description: str
    category: str
    priority: str
    status: str
    assignee: Any  # a user or None
    customer: Any  # a customers.Customer or None
    call: Any  # a calls.Call or None


@transaction.atomic
def ticket_create(
    *,
    subject: str,
    description: str = "",
    category: str = Ticket.Category.OTHER,
    priority: str = Priority.NORMAL,
    status: str = Ticket.Status.NEW,
    customer=None,
    call=None,
    call_id: int | None = None,
    assignee=None,
) -> Ticket:
    """`call` (a calls.Call) or `call_id`: the call the ticket came from, if any."""
    ticket = Ticket(
        subject=subject[:200], description=description, category=category, priority=priority,
        customer=customer, call=call, assignee=assignee, created_at=timezone.now(),
    )
    if call is None and call_id:
        ticket.call_id = call_id
    ticket.apply_sla()
    ticket.set_status(status, at=ticket.created_at)
    ticket.full_clean(exclude=["reference"])
    ticket.save()
    # In the transaction: receivers write their outbox rows with the ticket and send after commit.
    ticket_created.send(sender=Ticket, ticket=ticket)
    return ticket


@transaction.atomic
def ticket_update(*, ticket: Ticket, **changes: Unpack[TicketChanges]) -> Ticket:
    """Apply `changes`, then the rules: a new priority moves the due times (from the opening time),
    resolving or closing stamps `resolved_at`, reopening clears it. Saves only what changed and
    returns `ticket` with the saved values."""
    unknown = set(changes) - set(TicketChanges.__annotations__)
    if unknown:
        raise TypeError(f"ticket_update() cannot set {', '.join(sorted(unknown))}")
    # Compared with the stored row, locked: the admin hands in an instance its form already
    # changed, and two people saving at once must not both see the old status.
    stored = Ticket.objects.select_for_update().get(pk=ticket.pk)
    changed = {name: value for name, value in changes.items() if getattr(stored, name) != value}
    if not changed:
        return ticket
    new_status = changed.pop("status", None)
    for name, value in changed.items():
        setattr(stored, name, value)
    fields = set(changed)
    if "priority" in changed:
        stored.apply_sla()
        fields |= {"first_response_due_at", "sla_due_at"}
    if new_status is not None:
        stored.set_status(new_status)
        fields |= {"status", "resolved_at"}
    stored.clean_fields(exclude=[f.name for f in Ticket._meta.fields if f.name not in fields])
    stored.save(update_fields=[*sorted(fields), "updated_at"])
    for name in [*fields, "updated_at"]:
        attname = Ticket._meta.get_field(name).attname
        setattr(ticket, attname, getattr(stored, attname))
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
    return ticket_update(ticket=ticket, priority=priority)
