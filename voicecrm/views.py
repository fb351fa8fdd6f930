from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from voicecrm.dashboard import dashboard_context
from voicecrm.health import health_report


@never_cache
@require_GET
def healthz(request):
    healthy, report = health_report()
    return JsonResponse({"status": "ok" if healthy else "down", "checks": report}, status=200 if healthy else 503)


@staff_member_required
def dashboard(request):
    return render(request, "dashboard/index.html", dashboard_context())


@staff_member_required
def dashboard_panels(request):
    """The live part of the dashboard, re-fetched by htmx every few seconds."""
    return render(request, "dashboard/partials/panels.html", dashboard_context())
