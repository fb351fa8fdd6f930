from django.contrib import admin
from django.db.models import Count, Q
from import_export.admin import ImportMixin

from calls.models import Call
from customers.models import Appointment, Customer, OpeningHours, Order, Service
from customers.resources import CustomerResource
from tickets.models import Ticket
from core.admin import CrmModelAdmin, ReadOnlyInline


class CallInline(ReadOnlyInline):
    model = Call
    fields = ["started_at", "channel", "status", "intent", "outcome", "duration_seconds"]
    readonly_fields = fields
    ordering = ["-started_at"]


class TicketInline(ReadOnlyInline):
    model = Ticket
    fields = ["reference", "subject", "category", "priority", "status", "sla_due_at"]
    readonly_fields = fields


class AppointmentInline(ReadOnlyInline):
    model = Appointment
    fk_name = "customer"
    fields = ["service", "starts_at", "ends_at", "status"]
    readonly_fields = fields


class OrderInline(ReadOnlyInline):
    model = Order
    fields = ["number", "placed_at", "total", "status", "tracking_number"]
    readonly_fields = fields


@admin.register(Customer)
class CustomerAdmin(ImportMixin, CrmModelAdmin):
    resource_classes = [CustomerResource]
    list_display = ["account_number", "full_name", "phone", "email", "company", "plan", "balance", "status", "open_tickets"]
    list_filter = ["status", "plan", "created_at"]
    search_fields = ["account_number", "first_name", "last_name", "phone", "email", "company", "postcode"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [CallInline, TicketInline, AppointmentInline, OrderInline]
    fieldsets = [
        (None, {"fields": ["account_number", ("first_name", "last_name"), ("phone", "email"), "company"]}),
        ("Account", {"fields": [("plan", "status"), "balance", "notes"]}),
        ("Identity verification", {"fields": [("date_of_birth", "postcode")]}),
        ("History", {"fields": [("created_at", "updated_at")]}),
    ]

    def get_queryset(self, request):
        open_statuses = Ticket.OPEN_STATUSES
        return super().get_queryset(request).annotate(
            open_ticket_count=Count("tickets", filter=Q(tickets__status__in=open_statuses))
        )

    @admin.display(description="Open tickets", ordering="open_ticket_count")
    def open_tickets(self, customer: Customer) -> int:
        return customer.open_ticket_count


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


@admin.register(Service)
class ServiceAdmin(CrmModelAdmin):
    list_display = ["name", "duration_minutes", "capacity", "price", "active"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [OpeningHoursInline]


@admin.register(Appointment)
class AppointmentAdmin(CrmModelAdmin):
    list_display = ["starts_at", "customer", "service", "status", "source_call"]
    list_filter = ["status", "service", "starts_at"]
    search_fields = ["customer__first_name", "customer__last_name", "customer__account_number", "customer__phone"]
    list_select_related = ["customer", "service", "source_call"]
    raw_id_fields = ["customer", "source_call"]
    date_hierarchy = "starts_at"
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Order)
class OrderAdmin(CrmModelAdmin):
    list_display = ["number", "customer", "placed_at", "total", "status", "tracking_number"]
    list_filter = ["status", "placed_at"]
    search_fields = ["number", "tracking_number", "customer__account_number", "customer__last_name"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    date_hierarchy = "placed_at"
