import datetime
import json

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentConfig
from calls.models import (
    Call,
    CallEvent,
    InformationRecord,
    Turn,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = [
            "index", "speaker", "text", "heard_text", "interrupted", "partial", "intent", "start_ms", "end_ms",
            "confidence", "endpointing_ms", "stt_ms", "agent_ms", "tts_first_audio_ms", "voice_to_voice_ms",
            "client_voice_to_voice_ms",
        ]


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["kind", "name", "payload", "created_at"]


class InformationRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = InformationRecord
        fields = ["category", "key", "value", "created_at"]


class CallSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    recording_url = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id", "channel", "direction", "from_number", "to_number", "provider_call_id", "customer", "agent",
            "agent_version", "status", "end_reason", "started_at", "answered_at", "ended_at", "duration_seconds",
            "recording_url", "intent", "summary", "sentiment", "outcome", "structured_data", "extraction_errors",
            "schema_version", "analysis_status",
        ]

    def get_recording_url(self, call: Call) -> str | None:
        # The permission-checked view (with the same token), never the file's media URL.
        if not call.recording:
            return None
        url = reverse("calls:recording", args=[call.public_id])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class CallDetailSerializer(CallSerializer):
    turns = TurnSerializer(many=True, read_only=True)
    events = CallEventSerializer(many=True, read_only=True)
    information = InformationRecordSerializer(many=True, read_only=True)

    class Meta(CallSerializer.Meta):
        fields = CallSerializer.Meta.fields + ["turns", "events", "information"]


# --- Information records, webhook endpoints and deliveries (/api/information/, /api/webhooks/…) -----


class InformationSerializer(serializers.ModelSerializer):
    """A fact a caller shared, with the call (its public id) and the customer it was filed under."""

    call = serializers.UUIDField(source="call.public_id", read_only=True)

    class Meta:
        model = InformationRecord
        fields = ["id", "call", "customer", "category", "key", "value", "created_at"]
        read_only_fields = fields


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint as listed and edited: its secret never comes back, only which one it is (`secret_hint`)."""

    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1,
                                   max_length=len(WebhookEvent.choices), help_text="The events it receives.")
    agent = serializers.SlugRelatedField(slug_field="slug", queryset=AgentConfig.objects.all(), required=False,
                                         allow_null=True, help_text="Only events of this agent's calls (its slug); "
                                                                    "empty for all.")
    secret_hint = serializers.SerializerMethodField(help_text="The start of the signing secret: which one it is.")
    previous_secret_until = serializers.SerializerMethodField(
        help_text="After a rotation: until when the previous secret signs too.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "events", "agent", "active", "secret_hint", "previous_secret_until",
                  "disabled_at", "disabled_reason", "consecutive_failures", "failing_since", "last_success_at",
                  "last_failure_at", "created_at", "updated_at"]
        read_only_fields = ["disabled_at", "disabled_reason", "consecutive_failures", "failing_since",
                            "last_success_at", "last_failure_at", "created_at", "updated_at"]
        extra_kwargs = {"url": {"help_text": "Receives signed POST requests. Public addresses only: private, "
                                             "loopback and link-local targets are refused (SSRF)."}}

    def validate_events(self, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))

    def get_secret_hint(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.secret[:10] + "…"

    def get_previous_secret_until(self, endpoint: WebhookEndpoint) -> datetime.datetime | None:
        return endpoint.rotation_overlap_until if endpoint.signing_secrets(now=timezone.now())[1:] else None


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The answer to a creation: the only time the secret is shown (and after a rotation)."""

    secret = serializers.CharField(read_only=True, help_text="Verify X-VoiceCRM-Signature with it; shown only now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "duration_ms", "response_status", "response_body", "error"]
        read_only_fields = fields
        extra_kwargs = {"response_body": {"help_text": "The start of the receiver's answer; only for those who may "
                                                       "change endpoints (it is whatever the URL reached)."}}


class WebhookDeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    call = serializers.UUIDField(source="call.public_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event", "event_id", "call", "status", "attempts", "next_attempt_at",
                  "last_attempt_at", "delivered_at", "response_status", "error", "created_at"]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    """A delivery with the exact body it sends (as JSON) and its attempt log."""

    payload = serializers.SerializerMethodField(help_text="The request body, sent byte for byte on every attempt.")
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempt_log"]

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_payload(self, delivery: WebhookDelivery) -> dict:
        return json.loads(delivery.body)

    def to_representation(self, delivery: WebhookDelivery) -> dict:
        data = super().to_representation(delivery)
        if not self.context.get("show_response_bodies"):
            for attempt in data["attempt_log"]:
                attempt.pop("response_body")
        return data
