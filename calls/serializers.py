from django.urls import reverse
from rest_framework import serializers

from calls.models import Call, CallEvent, InformationRecord, Turn


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
