import json

from django.contrib import admin
from django.utils.html import format_html

from agents.admin_actions import make_regression_test
from calls.models import Call, CallEvent, InformationRecord, Turn
from voicecrm.admin_tools import CrmModelAdmin, ReadOnlyInline


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
        "intent", "outcome", "analysis_status",
    ]
    list_filter = ["status", "channel", "analysis_status", "direction", "sentiment", "agent", "started_at"]
    search_fields = ["public_id", "provider_call_id", "from_number", "to_number", "customer__account_number",
                     "customer__last_name", "summary"]
    list_select_related = ["customer", "agent"]
    raw_id_fields = ["customer"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    inlines = [TurnInline, CallEventInline, InformationInline]
    actions = [*CrmModelAdmin.actions, make_regression_test]
    readonly_fields = [
        "public_id", "channel", "direction", "from_number", "to_number", "provider_call_id", "agent", "agent_version",
        "status", "end_reason", "started_at", "answered_at", "ended_at", "duration_seconds", "recording_player",
        "structured_data_pretty", "extraction_errors", "schema_version", "analysis_status", "analysis_error",
        "created_at", "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["public_id", ("channel", "direction"), ("from_number", "to_number"), "provider_call_id",
                           "customer", ("agent", "agent_version")]}),
        ("Lifecycle", {"fields": [("status", "end_reason"), ("started_at", "answered_at", "ended_at"),
                                  "duration_seconds", "recording_player"]}),
        ("Outcome", {"fields": ["intent", "outcome", "sentiment", "summary"]}),
        ("Extracted data", {"fields": ["structured_data_pretty", "extraction_errors", "schema_version",
                                        ("analysis_status", "analysis_error")]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("summary", "structured_data", "extraction_errors")

    @admin.display(description="Call", ordering="public_id")
    def short_id(self, call: Call) -> str:
        return str(call.public_id)[:8]

    @admin.display(description="Recording")
    def recording_player(self, call: Call) -> str:
        if not call.recording:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio>', call.recording.url)

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
