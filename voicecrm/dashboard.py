"""Read-only figures for the supervisor dashboard."""

import datetime as dt
import statistics

from django.db.models import Q
from django.utils import timezone

from calls.models import Call, CallEvent, Turn
from customers.models import Appointment
from tickets.models import Ticket

# What the dashboard shows: calls, tickets, appointments and the customers they belong to.
# Staff without every one of these (no role, or a narrower custom one) are refused the page.
DASHBOARD_PERMISSIONS = ["calls.view_call", "tickets.view_ticket", "customers.view_appointment", "customers.view_customer"]


def dashboard_context() -> dict:
    now = timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today = Call.objects.filter(started_at__gte=day_start)
    finished_today = today.filter(status__in=Call.TERMINAL_STATUSES)
    finished_count = finished_today.count()
    transferred = (
        CallEvent.objects.filter(call__in=finished_today, kind=CallEvent.Kind.TRANSFER).values("call").distinct().count()
    )
    latencies = list(
        Turn.objects.filter(call__in=today, voice_to_voice_ms__isnull=False).values_list("voice_to_voice_ms", flat=True)[:5000]
    )
    open_tickets = Ticket.objects.filter(status__in=Ticket.OPEN_STATUSES)
    return {
        "stats": {
            "live_calls": Call.objects.filter(status=Call.Status.IN_PROGRESS).count(),
            "calls_today": today.count(),
            "contained_pct": round(100 * (finished_count - transferred) / finished_count) if finished_count else None,
            "v2v_p50": round(statistics.median(latencies)) if latencies else None,
            "open_tickets": open_tickets.count(),
            "overdue_tickets": open_tickets.filter(sla_due_at__lt=now).count(),
        },
        "recent_calls": Call.objects.select_related("customer", "agent").order_by("-started_at")[:10],
        "due_tickets": open_tickets.filter(~Q(sla_due_at=None)).order_by("sla_due_at")[:8],
        "appointments": Appointment.objects.filter(
            starts_at__gte=now, starts_at__lt=now + dt.timedelta(days=7), status__in=Appointment.ACTIVE_STATUSES
        ).select_related("customer", "service")[:8],
    }
