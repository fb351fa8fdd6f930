"""Admin actions that live with the dialog engine but act on other apps' models."""

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from agents.conversations import conversation_from_call, conversation_yaml


@admin.action(description="Make a regression test from this call")
def make_regression_test(modeladmin, request, queryset):
    """Download the selected calls as YAML conversations (one document each) for
    `manage.py test_conversations` and agents/tests/conversations/."""
    calls = list(queryset.select_related("agent", "customer").order_by("started_at")[:50])
    body = "# Exported from VoiceCRM; review the expectations before adding this to the test suite.\n"
    body += conversation_yaml([conversation_from_call(call) for call in calls])
    response = HttpResponse(body, content_type="application/x-yaml; charset=utf-8")
    name = f"call-{str(calls[0].public_id)[:8]}" if len(calls) == 1 else f"calls-{timezone.now():%Y%m%d-%H%M%S}"
    response["Content-Disposition"] = f'attachment; filename="{name}.yaml"'
    return response
