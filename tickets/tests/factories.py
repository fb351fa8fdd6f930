from collections.abc import Sequence

import factory

from tickets.models import Priority, SlaPolicy, Ticket
from tickets.services import ticket_create


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaPolicy
        django_get_or_create = ("priority",)

    priority = Priority.NORMAL
    first_response_minutes = 240
    resolution_minutes = 1440


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    subject = factory.Sequence(lambda n: f"Router keeps dropping {n}")
    category = Ticket.Category.TECHNICAL
    priority = Priority.NORMAL

    @classmethod
    def _create(cls, model_class, *args, **kwargs) -> Ticket:
        # Through the service, like every real ticket: due times set, ticket_created sent.
        return ticket_create(**kwargs)


def ticket_form(ticket: Ticket | None = None, *, comments: Sequence[str] = (), **fields) -> dict:
    """The POST body of the admin's ticket add or change page, with `fields` changed and new inline comments."""
    ticket = ticket or Ticket(subject="Router dead", category=Ticket.Category.TECHNICAL)
    data = {
        "subject": ticket.subject, "description": ticket.description, "category": ticket.category,
        "priority": ticket.priority, "status": ticket.status, "customer": ticket.customer_id or "",
        "call": ticket.call_id or "", "assignee": ticket.assignee_id or "",
        "comments-TOTAL_FORMS": str(len(comments)), "comments-INITIAL_FORMS": "0",
        "comments-MIN_NUM_FORMS": "0", "comments-MAX_NUM_FORMS": "1000",
    }
    for i, body in enumerate(comments):
        data[f"comments-{i}-body"] = body
    return {**data, **fields}
