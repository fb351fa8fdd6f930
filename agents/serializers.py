"""The REST API's shapes of agents, their knowledge and their version history. Validation beyond
shapes is the model's (field validators, clean()) and agents/services.py's, as in the admin."""

from auditlog.models import LogEntry
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentConfig, KnowledgeEntry


class AgentConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentConfig
        fields = [
            "id", "name", "slug", "scenario", "language", "active", "version", "greeting", "closing", "persona",
            "voice", "speaking_rate", "stt_model", "endpointing_silence_ms", "barge_in_enabled", "barge_in_min_ms",
            "silence_reprompt_seconds", "silence_hangup_seconds", "max_call_seconds", "enabled_tools", "flow",
            "extraction_schema", "escalation_rules", "transfer_target", "trust_caller_id", "voicemail_message",
            "retry_attempts", "retry_spacing_minutes", "created_at", "updated_at",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]
        extra_kwargs = {
            "version": {"help_text": "1 when created; every save is the next version (history: …/versions/)."},
            "enabled_tools": {"help_text": 'The tools the agent may use, e.g. ["find_customer", "verify_customer"]. '
                                           "Tools that read private data need verify_customer (or a trusted caller "
                                           "ID)."},
            "flow": {"help_text": "Slot-filling flow (docs/flows.md); {} uses the scenario's built-in flow."},
        }

    def validate_extraction_schema(self, value):
        # A form's "null" reaches here as None (DRF parses form JSON after its null check); the
        # model's validator reads None as "no schema", the column takes only {} for that.
        return {} if value is None else value


class KnowledgeEntrySerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                         help_text="The agent it belongs to; null: shared with every agent.")

    class Meta:
        model = KnowledgeEntry
        fields = ["id", "agent", "title", "answer", "tags", "active", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class AgentVersionSerializer(serializers.Serializer):
    """One save of an agent, from the audit log: the version it made, when, by whom, what changed."""

    version = serializers.SerializerMethodField(help_text="The version this save made (null if the log cannot tell).")
    action = serializers.SerializerMethodField()
    at = serializers.DateTimeField(source="timestamp")
    by = serializers.CharField(source="actor.get_username", allow_null=True, default=None,
                               help_text="Who saved it; null for changes made outside a request (commands, scripts).")
    changes = serializers.SerializerMethodField(help_text=(
        'Each changed field: {"from": old, "to": new}, as text the audit log keeps (JSON fields as JSON text).'))

    # Reverse relations and stamps auditlog also lists on creation; not the agent's configuration.
    HIDDEN = {"id", "version", "created_at", "updated_at", "calls", "routes", "knowledge", "daily_stats",
              "webhook_endpoints"}

    @extend_schema_field(OpenApiTypes.INT)
    def get_version(self, entry: LogEntry) -> int | None:
        before, after = (entry.changes or {}).get("version", [None, None])
        for value, step in ((after, 0), (before, 1)):  # an update stores the old number and F("version") + 1
            if isinstance(value, str) and value.isdigit():
                return int(value) + step
        return None

    @extend_schema_field(serializers.ChoiceField(choices=["created", "changed", "deleted"]))
    def get_action(self, entry: LogEntry) -> str:
        return {LogEntry.Action.CREATE: "created", LogEntry.Action.DELETE: "deleted"}.get(entry.action, "changed")

    @extend_schema_field({"type": "object", "additionalProperties": {
        "type": "object", "properties": {"from": {"type": "string", "nullable": True}, "to": {"type": "string",
                                                                                            "nullable": True}}}})
    def get_changes(self, entry: LogEntry) -> dict:
        return {field: {"from": None if before == "None" else before, "to": None if after == "None" else after}
                for field, (before, after) in sorted((entry.changes or {}).items()) if field not in self.HIDDEN}
