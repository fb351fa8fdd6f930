"""Supervisor controls: status columns and filters, re-run and re-extract with progress and changes."""

import pytest
from django.urls import reverse

from calls.models import AnalysisBatch, AnalysisRun, Call, WebhookDelivery, WebhookEndpoint
from calls.postcall.pipeline import analysis_run_execute_sync
from calls.services import call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyzed_call(broker):
    call = call_with_turns(scenarios.CHECK_IN)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())
    return Call.objects.get(pk=call.pk)


def test_the_call_list_shows_stage_status_and_filters_by_failed_stage(client, alice, analyzed_call):
    client.force_login(alice)
    url = reverse("admin:calls_call_changelist")
    page = client.get(url).content.decode()
    assert "Stages" in page and "Tr–" in page and "Ex✓" in page and "failed analysis stage" in page
    assert str(analyzed_call.public_id)[:8] in page
    assert str(analyzed_call.public_id)[:8] not in client.get(url, {"failed_stage": "extract"}).content.decode()
    assert str(analyzed_call.public_id)[:8] in client.get(url, {"extraction_errors": "no"}).content.decode()
    assert str(analyzed_call.public_id)[:8] in client.get(url, {"analysis_status__exact": "done"}).content.decode()


def test_the_call_page_shows_each_stage_and_what_the_extraction_changed(client, alice, analyzed_call):
    client.force_login(alice)
    page = client.get(reverse("admin:calls_call_change", args=[analyzed_call.pk])).content.decode()
    assert "Post-call analysis" in page and "Run #1" in page
    for label in ("Transcribe recording", "Summarize", "Extract fields", "CRM actions", "Webhooks", "Analytics"):
        assert label in page
    assert "the call has no recording" in page
    assert "driver_status" in page and "added" in page


def test_reextract_shows_progress_then_the_field_by_field_diff(
        client, alice, analyzed_call, eager_celery, django_capture_on_commit_callbacks):
    agent = analyzed_call.agent
    del agent.extraction_schema["properties"]["delay_reason"]
    agent.save()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):  # embedded mode: the run happens on commit
        response = client.post(reverse("admin:calls_call_changelist"),
                               {"action": "reextract_analysis", "_selected_action": [analyzed_call.pk]})
    batch = AnalysisBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:calls_call_analysis_progress",
                                                                          args=[batch.pk])
    page = client.get(response["Location"]).content.decode()
    assert "1 of 1" in page and "finished (100%)" in page and "refreshes itself" not in page
    assert "delay_reason" in page and "removed" in page and "&quot;traffic&quot;" in page
    run = AnalysisRun.objects.get(call=analyzed_call, number=2)
    assert run.reason == "reextract" and run.requested_by == alice


def test_a_bulk_rerun_page_refreshes_until_every_call_is_done(client, alice, broker):
    calls = []
    for _ in range(3):
        call = call_with_turns(scenarios.CHECK_IN)
        call_finalize(call_id=call.pk, end_reason="agent_end")
        analysis_run_execute_sync(run=call.analysis_runs.get())
        calls.append(call)
    live = call_with_turns(scenarios.CHECK_IN)
    client.force_login(alice)
    response = client.post(reverse("admin:calls_call_changelist"),
                           {"action": "rerun_analysis", "_selected_action": [c.pk for c in calls] + [live.pk]},
                           follow=True)
    page = response.content.decode()
    assert "Left out 1" in page and "has not ended" in page
    assert "0 of 3" in page and "http-equiv=\"refresh\"" in page and "3 waiting" in page
    for run in AnalysisRun.objects.filter(number=2):
        analysis_run_execute_sync(run=run)
    page = client.get(response.redirect_chain[-1][0]).content.decode()
    assert "3 of 3" in page and "http-equiv=\"refresh\"" not in page


def test_viewers_cannot_rerun(client, charlie, analyzed_call):
    client.force_login(charlie)
    page = client.get(reverse("admin:calls_call_changelist")).content.decode()
    assert "rerun_analysis" not in page
    client.post(reverse("admin:calls_call_changelist"),
                {"action": "rerun_analysis", "_selected_action": [analyzed_call.pk]})
    assert not AnalysisBatch.objects.exists()


def test_webhook_admin_pages_and_the_secret_is_hidden_from_viewers(client, alice, charlie, broker, loopback):
    endpoint = WebhookEndpoint.objects.create(name="CRM", url=loopback.url, events=["call.ended"])
    client.force_login(alice)
    change = reverse("admin:calls_webhookendpoint_change", args=[endpoint.pk])
    assert endpoint.secret in client.get(change).content.decode()
    client.post(reverse("admin:calls_webhookendpoint_changelist"),
                {"action": "send_test_event", "_selected_action": [endpoint.pk]})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    for name in ("webhookdelivery", "analysisrun", "analysisbatch", "agentdailystats", "webhookendpoint"):
        assert client.get(reverse(f"admin:calls_{name}_changelist")).status_code == 200, name
    assert client.get(reverse("admin:calls_webhookdelivery_change", args=[delivery.pk])).status_code == 200
    client.force_login(charlie)
    page = client.get(change).content.decode()
    assert endpoint.secret not in page and endpoint.secret[:10] in page


def test_adding_an_endpoint_in_the_admin(client, alice):
    client.force_login(alice)
    response = client.post(reverse("admin:calls_webhookendpoint_add"), {
        "name": "Zapier", "url": "https://hooks.example.com/voicecrm", "events": '["call.analyzed", "ticket.created"]',
        "active": "on", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["call.analyzed", "ticket.created"] and endpoint.secret.startswith("whsec_")
    bad = client.post(reverse("admin:calls_webhookendpoint_add"), {
        "name": "Typo", "url": "https://x.example.com", "events": '["call.endd"]', "active": "on",
        "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })
    assert "Unknown events: call.endd" in bad.content.decode()


def test_the_call_page_shows_the_post_call_transcript(client, alice, analyzed_call):
    from calls.models import CallTranscript

    CallTranscript.objects.create(call=analyzed_call, model="base", beam_size=5, audio_seconds=25.0,
                                  elapsed_seconds=3.1, segments=[
                                      {"speaker": "agent", "start": 0.41, "end": 3.9, "text": "What's your status?"},
                                      {"speaker": "caller", "start": 4.57, "end": 8.2, "text": "Running <late>."}])
    client.force_login(alice)
    page = client.get(reverse("admin:calls_call_change", args=[analyzed_call.pk])).content.decode()
    assert "Whisper base, beam 5: 25.0 s of audio in 3.1 s." in page
    assert "4.6s</span> <strong>Caller</strong>: Running &lt;late&gt;." in page
