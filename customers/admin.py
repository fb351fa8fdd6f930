from django.contrib import admin, messages
from django.utils import timezone
from import_export.admin import ImportMixin

from core.admin import CrmModelAdmin, ReadOnlyInline
from customers.models import Appointment, Customer, OpeningHours, Order, Service
from customers.resources import CustomerResource
from customers.services import customer_verification_unlock


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
    list_display = ["account_number", "full_name", "phone", "email", "company", "plan", "balance", "status"]
    list_filter = ["status", "plan", "created_at"]
    search_fields = ["account_number", "first_name", "last_name", "phone", "email", "company", "postcode"]
    readonly_fields = ["created_at", "updated_at", "verification_failures", "verification_failed_at",
                       "verification_locked_until", "verification_state"]
    date_hierarchy = "created_at"
    actions = [*CrmModelAdmin.actions, "clear_verification_lockout"]
    # The apps above add their own timelines, columns and annotations (calls/admin.py,
    # tickets/admin.py), so this app needs to know nothing of them.
    inlines = [AppointmentInline, OrderInline]
    annotations: dict = {}
    fieldsets = [
        (None, {"fields": ["account_number", ("first_name", "last_name"), ("phone", "email"), "company"]}),
        ("Account", {"fields": [("plan", "status"), "balance", "notes"]}),
        ("Identity verification", {"fields": [
            ("date_of_birth", "postcode"), "verification_state",
            ("verification_failures", "verification_failed_at", "verification_locked_until"),
        ]}),
        ("History", {"fields": [("created_at", "updated_at")]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**self.annotations)

    @admin.display(description="Verification")
    def verification_state(self, obj: Customer) -> str:
        if obj.verification_locked():
            return f"Locked until {timezone.localtime(obj.verification_locked_until):%Y-%m-%d %H:%M} after " \
                   f"{obj.verification_failures} failed attempts"
        if obj.verification_failures:
            return f"{obj.verification_failures} recent failed attempt(s)"
        return "No recent failures"

    @admin.action(description="Clear verification lockout (after checking who is calling)")
    def clear_verification_lockout(self, request, queryset) -> None:
        for customer in queryset:
            customer_verification_unlock(customer=customer)
        self.message_user(request, f"Cleared verification for {queryset.count()} customer(s).", messages.SUCCESS)

    def has_import_permission(self, request) -> bool:
        # django-import-export lets any staff member import unless told otherwise. An import
        # creates customers, and updates them too when the resource matches rows by id fields.
        updates = any(resource._meta.import_id_fields for resource in self.resource_classes)
        return self.has_add_permission(request) and (not updates or self.has_change_permission(request))


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
