import datetime as dt
import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.phones import E164_REGEX, PhoneField

# Digits only, so an account number can be read out and keyed in on a phone.
account_number_validator = RegexValidator(r"^[0-9]{5,10}$", "An account number is 5 to 10 digits.")


def new_account_number() -> str:
    """A random 8-digit number that does not start with 0 (callers drop leading zeros)."""
    while True:
        number = str(secrets.randbelow(90_000_000) + 10_000_000)
        if not Customer.objects.filter(account_number=number).exists():
            return number


class Customer(models.Model):
    class Plan(models.TextChoices):
        BASIC = "basic", "Basic"
        STANDARD = "standard", "Standard"
        PREMIUM = "premium", "Premium"
        BUSINESS = "business", "Business"

    class Status(models.TextChoices):
        PROSPECT = "prospect", "Prospect"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    account_number = models.CharField(
        max_length=10, unique=True, default=new_account_number, validators=[account_number_validator]
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80, blank=True)
    phone = PhoneField(blank=True, db_index=True, help_text="Stored in E.164, e.g. +14155550123.")
    email = models.EmailField(blank=True)
    company = models.CharField(max_length=120, blank=True)
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.BASIC)
    balance = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), help_text="Amount owed; negative means credit."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # Identity verification facts asked on the phone.
    date_of_birth = models.DateField(null=True, blank=True)
    postcode = models.CharField(max_length=12, blank=True)
    # Failed verifications, counted across calls and channels (customers.services.customer_verify):
    # the count that reaches settings.VERIFICATION_MAX_FAILURES locks verification until
    # `verification_locked_until`.
    verification_failures = models.PositiveSmallIntegerField(default=0, editable=False)
    verification_failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    verification_locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["last_name", "postcode"]), models.Index(fields=["email"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(phone="") | Q(phone__regex=E164_REGEX), name="customer_phone_e164"
            ),
            models.CheckConstraint(condition=Q(account_number__regex=r"^[0-9]{5,10}$"), name="customer_account_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.account_number})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self) -> None:
        self.postcode = self.postcode.strip().upper()

    def verification_locked(self, now: dt.datetime | None = None) -> bool:
        return self.verification_locked_until is not None and self.verification_locked_until > (now or timezone.now())


class Service(models.Model):
    """Something a customer can book: a consultation, an installation, a repair visit."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveIntegerField(default=30, validators=[MinValueValidator(5)])
    capacity = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Bookings that may overlap (staff or rooms)."
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.duration_minutes)

    def open_intervals(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """Opening intervals on `day` as aware datetimes in the business time zone."""
        tz = timezone.get_current_timezone()
        return [
            (
                dt.datetime.combine(day, hours.opens, tzinfo=tz),
                dt.datetime.combine(day, hours.closes, tzinfo=tz),
            )
            for hours in self.opening_hours.all()
            if hours.weekday == day.weekday()
        ]

    def is_open_for(self, starts_at: dt.datetime, ends_at: dt.datetime) -> bool:
        local_start = timezone.localtime(starts_at)
        return any(
            opens <= local_start and timezone.localtime(ends_at) <= closes
            for opens, closes in self.open_intervals(local_start.date())
        )


class OpeningHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["service", "weekday", "opens"]
        verbose_name_plural = "opening hours"
        constraints = [models.CheckConstraint(condition=Q(closes__gt=models.F("opens")), name="hours_close_after_open")]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


def max_overlap(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """Most intervals in progress at any one instant (end is exclusive)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda e: (e[0], e[1]))
    busiest = running = 0
    for _, step in edges:
        running += step
        busiest = max(busiest, running)
    return busiest


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        RESCHEDULED = "rescheduled", "Rescheduled"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No-show"

    # Statuses that hold a slot; cancelled ones free it.
    ACTIVE_STATUSES = (Status.BOOKED, Status.RESCHEDULED)

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="appointments")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOOKED)
    source_call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments"
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["service", "starts_at"]), models.Index(fields=["customer", "starts_at"])]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appt_ends_after_start")]

    def __str__(self) -> str:
        return f"{self.service} for {self.customer.full_name} at {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @classmethod
    def slot_problem(
        cls,
        *,
        service: "Service",
        customer: "Customer",
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        exclude_id: int | None = None,
    ) -> str | None:
        """Why this slot cannot be booked, or None if it can."""
        if ends_at <= starts_at:
            return "The appointment must end after it starts."
        if not service.is_open_for(starts_at, ends_at):
            return f"{service.name} is not open at that time."
        overlapping_any = cls.objects.filter(
            status__in=cls.ACTIVE_STATUSES, starts_at__lt=ends_at, ends_at__gt=starts_at
        ).exclude(pk=exclude_id)
        if overlapping_any.filter(customer=customer).exists():
            return "The customer already has an appointment at that time."
        overlapping = overlapping_any.filter(service=service)
        intervals = [(max(a.starts_at, starts_at), min(a.ends_at, ends_at)) for a in overlapping]
        if max_overlap(intervals) >= service.capacity:
            return f"{service.name} is fully booked at that time."
        return None

    def clean(self) -> None:
        # Admin-side validation; the booking service re-checks under a row lock.

        if self.starts_at and self.ends_at and self.service_id and self.customer_id and self.is_active:
            problem = Appointment.slot_problem(
                service=self.service,
                customer=self.customer,
                starts_at=self.starts_at,
                ends_at=self.ends_at,
                exclude_id=self.pk,
            )
            if problem:
                raise ValidationError(problem)


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        RETURNED = "returned", "Returned"

    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    items = models.JSONField(default=list, blank=True, help_text='[{"sku": "...", "name": "...", "qty": 1, "price": "9.99"}]')
    total = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    tracking_number = models.CharField(max_length=40, blank=True)
    placed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-placed_at"]
        indexes = [models.Index(fields=["customer", "-placed_at"])]
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative")]

    def __str__(self) -> str:
        return f"Order {self.number}"
