import logging

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from calls.session import live
from voicecrm.dashboard import DASHBOARD_PERMISSIONS, dashboard_context
from voicecrm.health import health_report

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz_live(request):
    """Liveness: the process answers. Checks nothing else, so a database or Redis outage
    never gets a healthy process restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request):
    """Readiness (/healthz/ready, and /healthz): the database, the channel layer and the broker
    answer, and the process is not draining for shutdown. 503 otherwise. What went wrong is
    logged; only staff see it in the response."""
    healthy, report = health_report()
    if live.draining():
        healthy = False
        report["process"] = {"status": "draining"}
    for name, item in report.items():
        if item.get("error"):
            logger.warning("readiness: %s is down: %s", name, item["error"])
    if not (request.user.is_authenticated and request.user.is_staff):
        report = {name: {"status": item["status"]} for name, item in report.items()}
    return JsonResponse({"status": "ok" if healthy else "down", "checks": report}, status=200 if healthy else 503)


@staff_member_required
@permission_required(DASHBOARD_PERMISSIONS, raise_exception=True)
def dashboard(request):
    return render(request, "dashboard/index.html", dashboard_context())


@staff_member_required
@permission_required(DASHBOARD_PERMISSIONS, raise_exception=True)
def dashboard_panels(request):
    """The live part of the dashboard, re-fetched by htmx every few seconds."""
    return render(request, "dashboard/partials/panels.html", dashboard_context())
