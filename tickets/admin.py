from django.contrib import admin
from django.db.models import Count, Q
from django.utils import timezone

from core.admin import CrmModelAdmin, ReadOnlyInline
from customers.admin import CustomerAdmin
from tickets.models import SlaPolicy, Ticket, TicketComment
from tickets.services import TicketChanges, ticket_comment_add, ticket_create, ticket_update


class TicketCommentInline(admin.StackedInline):
    model = TicketComment
    extra = 1
    fields = ["body", "internal", "author", "created_at"]
    readonly_fields = ["author", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # comments are a log: added, never rewritten


class OverdueFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due_today", "Due within 24 h")]

    def queryset(self, request, queryset):
        now = timezone.now()
        open_tickets = queryset.filter(status__in=Ticket.OPEN_STATUSES)
        if self.value() == "overdue":
            return open_tickets.filter(sla_due_at__lt=now)
        if self.value() == "due_today":
            return open_tickets.filter(sla_due_at__gte=now, sla_due_at__lt=now + timezone.timedelta(hours=24))
        return queryset


@admin.register(Ticket)
class TicketAdmin(CrmModelAdmin):
    list_display = ["reference", "subject", "customer", "category", "priority", "status", "assignee", "sla_due_at", "overdue"]
    list_filter = [OverdueFilter, "status", "priority", "category", "assignee", "created_at"]
    search_fields = ["reference", "subject", "description", "customer__account_number", "customer__last_name"]
    list_select_related = ["customer", "assignee"]
    raw_id_fields = ["customer", "call"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "reference", "created_at", "updated_at", "first_response_due_at", "sla_due_at", "first_responded_at", "resolved_at",
    ]
    inlines = [TicketCommentInline]
    fieldsets = [
        (None, {"fields": ["reference", "subject", "description", ("customer", "call")]}),
        ("Triage", {"fields": [("category", "priority"), ("status", "assignee")]}),
        ("SLA", {"fields": [("first_response_due_at", "first_responded_at"), ("sla_due_at", "resolved_at"), "created_at"]}),
    ]

    @admin.display(boolean=True, description="Overdue")
    def overdue(self, ticket: Ticket) -> bool:
        return ticket.is_overdue

    def save_model(self, request, obj: Ticket, form, change) -> None:
        # The services own due times, resolution stamps and the ticket.created event.
        editable = [name for name in form.cleaned_data if name in TicketChanges.__annotations__]
        if change:
            ticket_update(ticket=obj, **{name: form.cleaned_data[name] for name in form.changed_data if name in editable})
            return
        created = ticket_create(**{name: form.cleaned_data[name] for name in editable})
        # The admin goes on with `obj` (inline comments, the log entry, the redirect): make it the saved row.
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not TicketComment:
            return super().save_formset(request, form, formset, change)
        # New comments go through the service so the first response is stamped.
        for comment in formset.save(commit=False):
            ticket_comment_add(ticket=form.instance, author=request.user, body=comment.body, internal=comment.internal)


@admin.register(TicketComment)
class TicketCommentAdmin(CrmModelAdmin):
    list_display = ["ticket", "author", "internal", "created_at"]
    list_filter = ["internal", "created_at"]
    search_fields = ["ticket__reference", "body"]
    list_select_related = ["ticket", "author"]
    raw_id_fields = ["ticket"]
    readonly_fields = ["author", "created_at"]

    def save_model(self, request, obj: TicketComment, form, change) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        # A new comment goes through the service, as in the ticket's page, so the first response is stamped.
        created = ticket_comment_add(ticket=obj.ticket, author=request.user, body=obj.body, internal=obj.internal)
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()


@admin.register(SlaPolicy)
class SlaPolicyAdmin(CrmModelAdmin):
    list_display = ["priority", "first_response_minutes", "resolution_minutes"]


class CustomerTicketInline(ReadOnlyInline):
    """A customer's tickets, on the customer's page."""

    model = Ticket
    fields = ["reference", "subject", "category", "priority", "status", "sla_due_at"]
    readonly_fields = fields


@admin.display(description="Open tickets", ordering="open_ticket_count")
def customer_open_tickets(customer) -> int:
    return customer.open_ticket_count


CustomerAdmin.annotations = {
    **CustomerAdmin.annotations,
    "open_ticket_count": Count("tickets", filter=Q(tickets__status__in=Ticket.OPEN_STATUSES)),
}
CustomerAdmin.list_display = [*CustomerAdmin.list_display, customer_open_tickets]
CustomerAdmin.inlines = [*CustomerAdmin.inlines, CustomerTicketInline]
