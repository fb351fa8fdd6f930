import datetime as dt
import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class SlaPolicy(models.Model):
    """How fast tickets of one priority must be answered and resolved (calendar minutes)."""

    priority = models.CharField(max_length=8, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ["resolution_minutes"]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("first_response_minutes")), name="sla_resolve_after_response"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_priority_display()}: respond {self.first_response_minutes} min, resolve {self.resolution_minutes} min"

    def due_times(self, opened_at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        return (
            opened_at + dt.timedelta(minutes=self.first_response_minutes),
            opened_at + dt.timedelta(minutes=self.resolution_minutes),
        )


def new_ticket_reference() -> str:
    """"T" and six digits: short enough to read out on a call."""
    while True:
        reference = f"T{secrets.randbelow(900_000) + 100_000}"
        if not Ticket.objects.filter(reference=reference).exists():
            return reference


class Ticket(models.Model):
    class Category(models.TextChoices):
        BILLING = "billing", "Billing"
        TECHNICAL = "technical", "Technical"
        ACCOUNT = "account", "Account"
        SALES = "sales", "Sales"
        CANCELLATION = "cancellation", "Cancellation"
        COMPLAINT = "complaint", "Complaint"
        EMERGENCY = "emergency", "Emergency"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)

    reference = models.CharField(max_length=12, unique=True, default=new_ticket_reference, editable=False)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    call = models.ForeignKey("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.OTHER, db_index=True)
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL, db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEW, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Resolution due time.")
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "sla_due_at"]), models.Index(fields=["customer", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.reference}: {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return bool(self.is_open and self.sla_due_at and self.sla_due_at < timezone.now())

    def apply_sla(self) -> None:
        """Set due times from the policy for the ticket's priority (none if no policy). Caller saves."""
        policy = SlaPolicy.objects.filter(priority=self.priority).first()
        if policy is None:
            self.first_response_due_at = self.sla_due_at = None
            return
        self.first_response_due_at, self.sla_due_at = policy.due_times(self.created_at)

    def set_status(self, status: str, *, at: dt.datetime | None = None) -> None:
        """Change status, stamping resolution times. Caller saves."""
        at = at or timezone.now()
        if status in (self.Status.RESOLVED, self.Status.CLOSED) and not self.resolved_at:
            self.resolved_at = at
        elif status in self.OPEN_STATUSES:
            self.resolved_at = None
        self.status = status


class TicketComment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    internal = models.BooleanField(default=False, help_text="Internal notes are not a response to the customer.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Comment on {self.ticket.reference} by {self.author or 'system'}"
