from django.contrib import admin

from agents.models import AgentConfig, KnowledgeEntry
from voicecrm.admin_tools import CrmModelAdmin


class KnowledgeInline(admin.TabularInline):
    model = KnowledgeEntry
    extra = 0
    fields = ["title", "answer", "tags", "active"]


@admin.register(AgentConfig)
class AgentConfigAdmin(CrmModelAdmin):
    list_display = ["name", "slug", "scenario", "language", "voice", "endpointing_silence_ms", "active", "version", "updated_at"]
    list_filter = ["scenario", "active", "language"]
    search_fields = ["name", "slug", "greeting", "persona"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [KnowledgeInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", ("scenario", "language"), "active", ("version", "updated_at")]}),
        ("What the agent says", {"fields": ["greeting", "closing", "persona"]}),
        ("Voice and turn-taking", {"fields": [
            ("voice", "speaking_rate"), "stt_model", "endpointing_silence_ms", ("barge_in_enabled", "barge_in_min_ms"),
            ("silence_reprompt_seconds", "silence_hangup_seconds"), "max_call_seconds",
        ]}),
        ("Behaviour", {"fields": ["enabled_tools", "flow", "escalation_rules", "transfer_target"]}),
        ("Post-call extraction", {"fields": ["extraction_schema"]}),
    ]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(CrmModelAdmin):
    list_display = ["title", "agent", "tags", "active", "updated_at"]
    list_filter = ["active", "agent"]
    search_fields = ["title", "answer", "tags"]
    list_select_related = ["agent"]
