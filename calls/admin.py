import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from calls.models import (
    AgentDailyStats,
    AnalysisBatch,
    AnalysisRun,
    AnalysisStage,
    AnalysisStageName,
    Call,
    CallEvent,
    CallTranscript,
    InformationRecord,
    Turn,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from calls.postcall.pipeline import analysis_rerun, batch_progress
from calls.webhooks import endpoint_enable, webhook_deliveries_enqueue, webhook_secret_rotate, webhook_test_send
from core.admin import CrmModelAdmin, ReadOnlyInline
from customers.admin import CustomerAdmin

STAGE_SYMBOLS = {"pending": "·", "running": "…", "done": "✓", "failed": "✗", "skipped": "–"}
STAGE_COLOURS = {"pending": "#888", "running": "#2c6fbb", "done": "#2e7d32", "failed": "#c62828", "skipped": "#888"}
STAGE_CODES = {"transcribe": "Tr", "summarize": "Su", "extract": "Ex", "act": "Ac", "notify": "Wh", "analytics": "An"}


def stages_badges(run: AnalysisRun | None) -> str:
    """A short code per stage, coloured by status: Tr✓ Su✓ Ex✗ …"""
    if run is None:
        return "—"
    return format_html_join(
        " ", '<span title="{}: {}{}" style="color:{};white-space:nowrap">{}{}</span>',
        ((s.get_name_display(), s.get_status_display(), f" — {s.error}" if s.error else "",
          STAGE_COLOURS.get(s.status, "#888"), STAGE_CODES.get(s.name, s.name[:2]), STAGE_SYMBOLS.get(s.status, "?"))
         for s in sorted(run.stages.all(), key=lambda s: s.position)),
    )


def changes_table(changes: list[dict]) -> str:
    if not changes:
        return format_html("<em>{}</em>", "No field changed.")
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
        ((c["field"], c["change"], json.dumps(c.get("before"), ensure_ascii=False),
          json.dumps(c.get("after"), ensure_ascii=False)) for c in changes),
    )
    return format_html("<table><thead><tr><th>Field</th><th>Change</th><th>Before</th><th>After</th></tr></thead>"
                       "<tbody>{}</tbody></table>", rows)


class StageFailedFilter(admin.SimpleListFilter):
    title = "failed analysis stage"
    parameter_name = "failed_stage"

    def lookups(self, request, model_admin):
        return AnalysisStageName.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        failed = AnalysisStage.objects.filter(run__call=OuterRef("pk"), name=self.value(), status=AnalysisStage.Status.FAILED)
        return queryset.filter(Exists(failed))


class ExtractionErrorsFilter(admin.SimpleListFilter):
    title = "extraction errors"
    parameter_name = "extraction_errors"

    def lookups(self, request, model_admin):
        return [("yes", "With errors"), ("no", "Without errors")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(extraction_errors=[])
        if self.value() == "no":
            return queryset.filter(extraction_errors=[])
        return queryset


class ProviderErrorFilter(admin.SimpleListFilter):
    title = "phone network error"
    parameter_name = "provider_error"

    def lookups(self, request, model_admin):
        return [("yes", "With an error"), ("no", "Without")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(provider_error="")
        if self.value() == "no":
            return queryset.filter(provider_error="")
        return queryset


class TurnInline(ReadOnlyInline):
    model = Turn
    show_change_link = False
    ordering = ["index"]
    fields = [
        "index", "speaker", "text", "heard_text", "interrupted", "partial", "intent", "confidence",
        "endpointing_ms", "stt_ms", "agent_ms", "tts_first_audio_ms", "voice_to_voice_ms", "client_voice_to_voice_ms",
    ]
    readonly_fields = fields


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    show_change_link = False
    fields = ["created_at", "kind", "name", "payload_pretty"]
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_pretty(self, event: CallEvent) -> str:
        return format_html("<pre style='white-space:pre-wrap;margin:0'>{}</pre>", json.dumps(event.payload, indent=1)[:2000])


class InformationInline(ReadOnlyInline):
    model = InformationRecord
    show_change_link = False
    fields = ["category", "key", "value"]
    readonly_fields = fields


@admin.register(Call)
class CallAdmin(CrmModelAdmin):
    list_display = [
        "short_id", "started_at", "channel", "from_number", "customer", "agent", "status", "duration_seconds",
        "intent", "outcome", "analysis_status", "analysis_stages",
    ]
    list_filter = ["status", "channel", "analysis_status", StageFailedFilter, ExtractionErrorsFilter,
                   ProviderErrorFilter, "direction", "outcome", "sentiment", "agent", "started_at"]
    search_fields = ["public_id", "provider_call_id", "from_number", "to_number", "customer__account_number",
                     "customer__last_name", "summary", "provider_error"]
    list_select_related = ["customer", "agent"]
    raw_id_fields = ["customer"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    inlines = [TurnInline, CallEventInline, InformationInline]
    # telephony/admin.py adds "export as a regression conversation" (the text channel owns that format).
    actions = [*CrmModelAdmin.actions, "rerun_analysis", "reextract_analysis"]
    readonly_fields = [
        "public_id", "channel", "direction", "from_number", "to_number", "provider_call_id", "agent", "agent_version",
        "status", "end_reason", "started_at", "answered_at", "ended_at", "duration_seconds", "recording_player",
        "structured_data_pretty", "extraction_errors", "schema_version", "analysis_status", "analysis_error",
        "created_at", "updated_at", "analysis_overview", "final_transcript_text", "provider_error", "variables",
        "answered_by", "attempt", "retry_of", "retry_due_at",
    ]
    fieldsets = [
        (None, {"fields": ["public_id", ("channel", "direction"), ("from_number", "to_number"), "provider_call_id",
                           "customer", ("agent", "agent_version")]}),
        ("Lifecycle", {"fields": [("status", "end_reason"), ("started_at", "answered_at", "ended_at"),
                                  "duration_seconds", "recording_player"]}),
        ("Phone network", {"fields": ["provider_error", "variables", "answered_by", ("attempt", "retry_of"),
                                      "retry_due_at"]}),
        ("Outcome", {"fields": ["intent", "outcome", "sentiment", "summary"]}),
        ("Extracted data", {"fields": ["structured_data_pretty", "extraction_errors", "schema_version",
                                        ("analysis_status", "analysis_error")]}),
        ("Post-call analysis", {"fields": ["analysis_overview", "final_transcript_text"]}),
    ]

    def get_queryset(self, request):
        runs = AnalysisRun.objects.order_by("-number").prefetch_related("stages")
        return (super().get_queryset(request).defer("summary", "structured_data", "extraction_errors")
                .prefetch_related(Prefetch("analysis_runs", queryset=runs, to_attr="runs_newest_first")))

    def get_urls(self):
        return [
            path("analysis/<int:batch_id>/", self.admin_site.admin_view(self.analysis_progress_view),
                 name="calls_call_analysis_progress"),
            *super().get_urls(),
        ]

    @admin.display(description="Stages")
    def analysis_stages(self, call: Call) -> str:
        runs = getattr(call, "runs_newest_first", None)
        return stages_badges(runs[0] if runs else None)

    @admin.display(description="Analysis runs")
    def analysis_overview(self, call: Call) -> str:
        runs = list(call.analysis_runs.order_by("-number").prefetch_related("stages")[:10])
        if not runs:
            return "No analysis yet."
        latest = runs[0]
        stage_rows = format_html_join(
            "", "<tr><td>{}</td><td style='color:{}'>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((s.get_name_display(), STAGE_COLOURS.get(s.status, "#888"), s.get_status_display(), s.attempts,
              f"{s.duration_ms} ms" if s.duration_ms is not None else "", s.error or s.detail.get("reason", ""))
             for s in sorted(latest.stages.all(), key=lambda s: s.position)),
        )
        history = format_html_join(
            "", "<li>#{} {} — {} ({}){}</li>",
            ((r.number, r.get_reason_display(), r.get_status_display(), r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
              f": {r.error}" if r.error else "") for r in runs),
        )
        return format_html(
            "<p><strong>Run #{}</strong> ({}), {}</p>"
            "<table><thead><tr><th>Stage</th><th>Status</th><th>Attempts</th><th>Time</th><th>Error / note</th></tr>"
            "</thead><tbody>{}</tbody></table><p>What the last extraction changed:</p>{}<p>Runs:</p><ul>{}</ul>",
            latest.number, latest.get_reason_display(), latest.get_status_display(), stage_rows,
            changes_table(latest.changes), history,
        )

    @admin.display(description="Post-call transcript")
    def final_transcript_text(self, call: Call) -> str:
        transcript = CallTranscript.objects.filter(call=call).first()
        if transcript is None:
            return "—"
        lines = format_html_join(
            "\n", "<div><span style='color:#888'>{}s</span> <strong>{}</strong>: {}</div>",
            ((f"{seg.get('start') or 0.0:.1f}", seg["speaker"].capitalize(), seg["text"]) for seg in transcript.segments),
        )
        return format_html("<p>Whisper {}, beam {}: {} s of audio in {} s.</p>{}", transcript.model,
                           transcript.beam_size, transcript.audio_seconds, transcript.elapsed_seconds, lines)

    def _start_batch(self, request, queryset, kind: str):
        batch, skipped = analysis_rerun(calls=queryset.select_related("agent"), kind=kind, user=request.user)
        if skipped:
            self.message_user(request, f"Left out {len(skipped)}: " + "; ".join(skipped[:10]), messages.WARNING)
        if not batch.total:
            self.message_user(request, "Nothing to analyze.", messages.WARNING)
            return None
        self.message_user(request, f"{batch.get_kind_display()}: {batch.total} calls queued.")
        return HttpResponseRedirect(reverse("admin:calls_call_analysis_progress", args=[batch.pk]))

    @admin.action(description="Re-run analysis", permissions=["change"])
    def rerun_analysis(self, request, queryset):
        return self._start_batch(request, queryset, AnalysisBatch.Kind.RERUN)

    @admin.action(description="Re-extract with the current schema", permissions=["change"])
    def reextract_analysis(self, request, queryset):
        return self._start_batch(request, queryset, AnalysisBatch.Kind.REEXTRACT)

    def analysis_progress_view(self, request, batch_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        batch = get_object_or_404(AnalysisBatch, pk=batch_id)
        runs = list(batch.runs.select_related("call").prefetch_related("stages").order_by("pk")[:500])
        context = {
            **self.admin_site.each_context(request),
            "title": f"{batch.get_kind_display()} — progress",
            "opts": self.model._meta,
            "batch": batch,
            "progress": batch_progress(batch),
            "rows": [{"run": run, "stages": stages_badges(run), "changes": changes_table(run.changes)
                      if run.status == AnalysisRun.Status.DONE else ""} for run in runs],
        }
        return TemplateResponse(request, "admin/calls/analysis_progress.html", context)

    @admin.display(description="Call", ordering="public_id")
    def short_id(self, call: Call) -> str:
        return str(call.public_id)[:8]

    @admin.display(description="Recording")
    def recording_player(self, call: Call) -> str:
        if not call.recording:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio>',
                           reverse("calls:recording", args=[call.public_id]))

    @admin.display(description="Structured data")
    def structured_data_pretty(self, call: Call) -> str:
        if not call.structured_data:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(call.structured_data, indent=2, ensure_ascii=False))


@admin.register(Turn)
class TurnAdmin(CrmModelAdmin):
    list_display = ["call", "index", "speaker", "text", "interrupted", "voice_to_voice_ms"]
    list_filter = ["speaker", "interrupted", "partial"]
    search_fields = ["text", "call__public_id"]
    list_select_related = ["call"]
    raw_id_fields = ["call"]
    show_full_result_count = False


@admin.register(CallEvent)
class CallEventAdmin(CrmModelAdmin):
    list_display = ["created_at", "call", "kind", "name"]
    list_filter = ["kind", "created_at"]
    search_fields = ["name", "call__public_id"]
    list_select_related = ["call"]
    raw_id_fields = ["call"]
    show_full_result_count = False


@admin.register(InformationRecord)
class InformationRecordAdmin(CrmModelAdmin):
    list_display = ["call", "customer", "category", "key", "value"]
    list_filter = ["category"]
    search_fields = ["key", "value", "customer__account_number"]
    list_select_related = ["call", "customer"]
    raw_id_fields = ["call", "customer"]


# --- Post-call analysis ----------------------------------------------------------------------------


class AnalysisStageInline(ReadOnlyInline):
    model = AnalysisStage
    show_change_link = False
    ordering = ["position"]
    fields = ["name", "status", "attempts", "started_at", "finished_at", "duration_ms", "error", "detail"]
    readonly_fields = fields


@admin.register(AnalysisRun)
class AnalysisRunAdmin(CrmModelAdmin):
    list_display = ["__str__", "call", "number", "reason", "status", "stages_column", "created_at", "dispatched_at",
                    "turnaround"]
    list_filter = ["status", "reason", "created_at"]
    search_fields = ["call__public_id", "error"]
    list_select_related = ["call"]
    raw_id_fields = ["call", "batch", "requested_by"]
    show_full_result_count = False
    inlines = [AnalysisStageInline]
    readonly_fields = ["call", "number", "reason", "status", "batch", "requested_by", "dispatched_at",
                       "dispatch_attempts", "dispatch_error", "error", "changes_view", "created_at", "started_at",
                       "finished_at"]
    exclude = ["changes"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stages")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Stages")
    def stages_column(self, run: AnalysisRun) -> str:
        return stages_badges(run)

    @admin.display(description="Turnaround (s)")
    def turnaround(self, run: AnalysisRun):
        return run.turnaround_seconds

    @admin.display(description="Field changes")
    def changes_view(self, run: AnalysisRun) -> str:
        return changes_table(run.changes)


@admin.register(AnalysisBatch)
class AnalysisBatchAdmin(CrmModelAdmin):
    list_display = ["__str__", "kind", "requested_by", "total", "progress_link", "created_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Progress")
    def progress_link(self, batch: AnalysisBatch) -> str:
        p = batch_progress(batch)
        url = reverse("admin:calls_call_analysis_progress", args=[batch.pk])
        return format_html('<a href="{}">{} of {} finished ({} failed)</a>', url, p["finished"], p["total"], p["failed"])


@admin.register(AgentDailyStats)
class AgentDailyStatsAdmin(CrmModelAdmin):
    list_display = ["day", "agent", "calls", "containment_rate", "average_duration_seconds", "extraction_completeness",
                    "voice_to_voice_p50_ms", "voice_to_voice_p95_ms", "top_intents"]
    list_filter = ["agent", "day"]
    date_hierarchy = "day"
    list_select_related = ["agent"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Intents")
    def top_intents(self, stats: AgentDailyStats) -> str:
        return ", ".join(f"{k} {v}" for k, v in list(stats.intents.items())[:4])


# --- Webhooks ----------------------------------------------------------------------------------------


class WebhookDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "status", "attempts", "response_status", "next_attempt_at", "error"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def get_queryset(self, request):
        # The latest few only; the full log is the deliveries list.
        qs = super().get_queryset(request)
        ids = list(qs.order_by("-created_at").values_list("pk", flat=True)[:20])
        return qs.filter(pk__in=ids)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(CrmModelAdmin):
    list_display = ["name", "url", "events_list", "agent", "active", "disabled_reason", "consecutive_failures",
                    "last_success_at", "last_failure_at"]
    list_filter = ["active", "agent"]
    search_fields = ["name", "url"]
    actions = [*CrmModelAdmin.actions, "send_test_event", "enable_endpoints", "rotate_secret"]
    inlines = [WebhookDeliveryInline]
    fieldsets = [
        (None, {"fields": ["name", "url", "events", "agent", "active"]}),
        ("Signing", {"fields": ["secret_display", "previous_secret_status"],
                     "description": "Receivers verify X-VoiceCRM-Signature with this secret; see docs/webhooks.md."}),
        ("Health", {"fields": ["disabled_reason", "disabled_at", "consecutive_failures", "failing_since",
                               "last_success_at", "last_failure_at"]}),
    ]
    readonly_fields = ["secret_display", "secret_hint", "previous_secret_status", "disabled_reason", "disabled_at", "consecutive_failures",
                       "failing_since", "last_success_at", "last_failure_at"]
    secret_fields = ["secret", "previous_secret"]

    @admin.display(description="Events")
    def events_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events or [])

    @admin.display(description="Secret")
    def secret_display(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.pk:
            return "Generated when you save."
        return format_html("<code>{}</code>", endpoint.secret)

    @admin.display(description="Secret")
    def secret_hint(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.secret[:10] + "…"  # which secret it is, not the secret

    @admin.display(description="Previous secret")
    def previous_secret_status(self, endpoint: WebhookEndpoint) -> str:
        if not (endpoint.previous_secret and endpoint.rotation_overlap_until
                and endpoint.rotation_overlap_until > timezone.now()):
            return "—"
        return (f"{endpoint.previous_secret[:10]}… also signs every request until "
                f"{timezone.localtime(endpoint.rotation_overlap_until):%Y-%m-%d %H:%M}")

    def get_fieldsets(self, request, obj=None):
        # Chosen per request (this admin instance serves every request at once): only those who
        # may change the endpoint see its secret.
        if self.has_change_permission(request, obj):
            return self.fieldsets
        return [(name, {**options, "fields": ["secret_hint" if f == "secret_display" else f for f in options["fields"]]})
                for name, options in self.fieldsets]

    def save_model(self, request, obj, form, change):
        was_active = WebhookEndpoint.objects.filter(pk=obj.pk).values_list("active", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        if change and obj.active and was_active is False:
            endpoint_enable(obj)

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request, queryset):
        for endpoint in queryset:
            webhook_test_send(endpoint=endpoint)
        self.message_user(request, f"Test event queued for {queryset.count()} endpoint(s); see the deliveries below.")

    @admin.action(description="Enable and send held deliveries", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        held = sum(endpoint_enable(endpoint) for endpoint in queryset)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s); {held} held deliveries queued.")

    @admin.action(description="Rotate the signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            webhook_secret_rotate(endpoint=endpoint)
        self.message_user(request, (
            f"New secrets generated. Requests carry signatures by the old and the new secret for "
            f"{settings.WEBHOOK_SECRET_OVERLAP_HOURS:g} h: update your receivers within that time."), messages.WARNING)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    show_change_link = False
    fields = ["number", "started_at", "duration_ms", "response_status", "error", "response_body"]
    readonly_fields = fields

    def get_fields(self, request, obj=None):
        # What a receiver answered can be anything its URL reached: only those who may change
        # the endpoints (and so choose where requests go) read it.
        if request.user.has_perm("calls.change_webhookendpoint"):
            return self.fields
        return [f for f in self.fields if f != "response_body"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(CrmModelAdmin):
    list_display = ["created_at", "endpoint", "event", "status", "attempts", "response_status", "next_attempt_at",
                    "delivered_at", "call"]
    list_filter = ["status", "event", "endpoint", "created_at"]
    search_fields = ["event_id", "public_id", "call__public_id", "dedupe_key"]
    list_select_related = ["endpoint", "call"]
    raw_id_fields = ["call"]
    show_full_result_count = False
    inlines = [WebhookAttemptInline]
    actions = [*CrmModelAdmin.actions, "retry_now"]
    exclude = ["body"]
    readonly_fields = ["public_id", "endpoint", "event", "event_id", "dedupe_key", "call", "body_pretty", "status",
                       "attempts", "next_attempt_at", "locked_until", "last_attempt_at", "delivered_at",
                       "response_status", "error", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Body")
    def body_pretty(self, delivery: WebhookDelivery) -> str:
        try:
            text = json.dumps(json.loads(delivery.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = delivery.body
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):

        ids = list(queryset.exclude(status=WebhookDelivery.Status.SUCCEEDED).values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=ids).update(status=WebhookDelivery.Status.PENDING,
                                                          next_attempt_at=timezone.now(), created_at=timezone.now())
        transaction.on_commit(lambda: webhook_deliveries_enqueue(ids))
        self.message_user(request, f"{len(ids)} deliveries queued again.")


class CustomerCallInline(ReadOnlyInline):
    """A customer's calls, on the customer's page."""

    model = Call
    fields = ["started_at", "channel", "status", "intent", "outcome", "duration_seconds"]
    readonly_fields = fields
    ordering = ["-started_at"]


CustomerAdmin.inlines = [CustomerCallInline, *CustomerAdmin.inlines]
