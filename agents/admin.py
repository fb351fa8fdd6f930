from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from agents.models import AgentConfig, KnowledgeEntry
from core.admin import CrmModelAdmin


class KnowledgeInline(admin.TabularInline):
    model = KnowledgeEntry
    extra = 0
    fields = ["title", "answer", "tags", "active"]


@admin.register(AgentConfig)
class AgentConfigAdmin(CrmModelAdmin):
    list_display = [
        "name", "slug", "scenario", "language", "voice", "endpointing_silence_ms", "trust_caller_id", "active", "version",
        "updated_at", "try_widget",
    ]
    list_filter = ["scenario", "active", "language", "trust_caller_id"]
    search_fields = ["name", "slug", "greeting", "persona"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["version", "created_at", "updated_at", "try_widget"]
    inlines = [KnowledgeInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", ("scenario", "language"), "active", ("version", "updated_at"), "try_widget"]}),
        ("What the agent says", {"fields": ["greeting", "closing", "persona"]}),
        ("Voice and turn-taking", {"fields": [
            ("voice", "speaking_rate"), "stt_model", "endpointing_silence_ms", ("barge_in_enabled", "barge_in_min_ms"),
            ("silence_reprompt_seconds", "silence_hangup_seconds"), "max_call_seconds",
        ]}),
        ("Behaviour", {"fields": ["enabled_tools", "flow", "escalation_rules", "transfer_target"]}),
        ("Caller identity", {"fields": ["trust_caller_id"], "description": (
            "Caller ID can be spoofed. Leave this off unless every route to this agent is a phone line whose caller "
            "ID you trust: off, a number match only identifies the caller, who verifies before anything private.")}),
        ("Outbound calls", {"fields": ["voicemail_message", ("retry_attempts", "retry_spacing_minutes")], "description": (
            "When this agent places calls (the API, or Call now on customers): the message an answering machine gets, "
            "and how often a busy or unanswered number is tried again. Its first words are the flow's "
            "greeting_outbound.")}),
        ("Post-call extraction", {"fields": ["extraction_schema"]}),
    ]

    def get_queryset(self, request):
        widget_key = Q(routes__kind="widget_key", routes__active=True)
        return super().get_queryset(request).annotate(widget_keys=Count("routes", filter=widget_key))

    @admin.display(description="Browser widget")
    def try_widget(self, obj: AgentConfig) -> str:
        """Opens the widget demo page on this agent, or offers to add the widget key it needs."""
        if not obj.pk:
            return "-"
        if getattr(obj, "widget_keys", 0):
            url = f"{reverse('widget-demo')}?{urlencode({'agent': obj.slug})}"
            return format_html('<a href="{}" target="_blank" rel="noopener">Try this agent</a>', url)
        url = f"{reverse('admin:telephony_route_add')}?{urlencode({'kind': 'widget_key', 'agent': obj.pk})}"
        return format_html('<a href="{}">Add a widget key to try it</a>', url)


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(CrmModelAdmin):
    list_display = ["title", "agent", "tags", "active", "updated_at"]
    list_filter = ["active", "agent"]
    search_fields = ["title", "answer", "tags"]
    list_select_related = ["agent"]
