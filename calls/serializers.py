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
    """A call as the API lists it. `provider_error` (the phone network's own message, which can name
    hosts and settings) is shown only when the view says so (`show_provider_error` in the context:
    Supervisors); others read null. `retry_of` is the public id of the attempt this one retries."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    recording_url = serializers.SerializerMethodField()
    retry_of = serializers.SerializerMethodField(help_text="Outbound: the id of the attempt this one retries.")
    provider_error = serializers.CharField(read_only=True, allow_null=True,
                                           help_text="The phone network's last error; null unless you are a Supervisor.")

    class Meta:
        model = Call
        fields = [
            "id", "channel", "direction", "from_number", "to_number", "provider_call_id", "customer", "agent",
            "agent_version", "status", "end_reason", "started_at", "answered_at", "ended_at", "duration_seconds",
            "recording_url", "intent", "summary", "sentiment", "outcome", "structured_data", "extraction_errors",
            "schema_version", "analysis_status", "variables", "answered_by", "attempt", "retry_of", "retry_due_at",
            "provider_error",
        ]

    def get_recording_url(self, call: Call) -> str | None:
        # The API's permission-checked download (same token), never the file's media URL.
        if not call.recording:
            return None
        url = reverse("call-recording", args=[call.public_id])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_retry_of(self, call: Call) -> str | None:
        # The API's queryset prefetches the retried calls: no query per row.
        return call.retry_of.public_id if call.retry_of_id else None

    def to_representation(self, call: Call) -> dict:
        data = super().to_representation(call)
        if not self.context.get("show_provider_error"):
            data["provider_error"] = None
        return data


class CallDetailSerializer(CallSerializer):
    turns = TurnSerializer(many=True, read_only=True)
    events = CallEventSerializer(many=True, read_only=True)
    information = InformationRecordSerializer(many=True, read_only=True)

    class Meta(CallSerializer.Meta):
        fields = CallSerializer.Meta.fields + ["turns", "events", "information"]


# --- Live calls, transcripts, re-analysis (/api/calls/live/, …/transcript/, …/reanalyze/) -------------


class LiveCallCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="full_name")
    account_number = serializers.CharField()


class LiveCallSerializer(serializers.ModelSerializer):
    """A call in progress: who is on it and for how long so far."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    agent_name = serializers.CharField(source="agent.name", read_only=True, allow_null=True, default=None)
    caller = serializers.SerializerMethodField(help_text="The other party's number: the caller of an inbound call, "
                                                          "the person called on an outbound one.")
    customer = LiveCallCustomerSerializer(read_only=True, allow_null=True,
                                          help_text="The customer the agent identified, if any.")
    turns = serializers.IntegerField(source="turn_count", read_only=True, help_text="Turns so far.")
    duration_seconds = serializers.SerializerMethodField(help_text="Since the call was answered (or started).")

    class Meta:
        model = Call
        fields = ["id", "channel", "direction", "agent", "agent_name", "caller", "customer", "started_at",
                  "answered_at", "duration_seconds", "turns", "intent", "heartbeat_at"]

    def get_caller(self, call: Call) -> str:
        return call.to_number if call.direction == Call.Direction.OUTBOUND else call.from_number

    def get_duration_seconds(self, call: Call) -> float:
        since = call.answered_at or call.started_at
        return round(max(0.0, (timezone.now() - since).total_seconds()), 1)


class TranscriptTurnSerializer(serializers.ModelSerializer):
    """One turn as it happened: for an agent reply cut off by the caller, `text` is what was generated
    and `heard_text` what the caller heard before interrupting."""

    class Meta:
        model = Turn
        fields = ["index", "speaker", "text", "heard_text", "interrupted", "partial", "intent", "confidence",
                  "start_ms", "end_ms", "endpointing_ms", "stt_ms", "agent_ms", "tts_first_audio_ms",
                  "voice_to_voice_ms", "client_voice_to_voice_ms"]


class RecordingTranscriptSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The Whisper model the recording was transcribed with.")
    language = serializers.CharField()
    text = serializers.CharField()
    segments = serializers.ListField(child=serializers.DictField(), help_text=(
        'Each {"speaker": "caller"|"agent"|"mixed", "start": s, "end": s, "text", "confidence"}.'))


class TranscriptSerializer(serializers.Serializer):
    """The live turns of a call, and the post-call transcript of its recording once there is one."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=Call.Status.choices)
    started_at = serializers.DateTimeField()
    turns = TranscriptTurnSerializer(many=True, source="ordered_turns")
    recording_transcript = serializers.SerializerMethodField()

    @extend_schema_field(RecordingTranscriptSerializer(allow_null=True))
    def get_recording_transcript(self, call: Call) -> dict | None:
        try:
            transcript = call.final_transcript
        except Call.final_transcript.RelatedObjectDoesNotExist:
            return None
        return RecordingTranscriptSerializer(transcript).data


def transcript_text(turns) -> str:
    """The plain-text transcript: one line a turn, `[mm:ss] Speaker: text`. An interrupted agent
    reply shows what the caller heard, marked "(interrupted)"; one cut off by the call's end
    "(cut off)"."""
    lines = []
    for turn in turns:
        at = f"[{turn.start_ms // 60000:02d}:{turn.start_ms // 1000 % 60:02d}] " if turn.start_ms is not None else ""
        said = turn.heard_text if turn.interrupted and turn.heard_text else turn.text
        marks = "".join(f" ({mark})" for mark, on in (("interrupted", turn.interrupted), ("cut off", turn.partial)) if on)
        lines.append(f"{at}{turn.get_speaker_display()}{marks}: {' '.join(said.split())}")
    return "\n".join(lines) + ("\n" if lines else "")


class ReanalyzeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[("rerun", "Every stage again"), ("reextract", "Extraction with the agent's current schema, "
                                                               "then actions, webhooks and analytics")],
        default="rerun", help_text="As the admin's actions: re-run analysis, or re-extract with the current schema.")


class AnalysisRunSerializer(serializers.Serializer):
    call = serializers.UUIDField(source="call.public_id")
    number = serializers.IntegerField(help_text="1 for the analysis when the call ended, 2 for the first re-run…")
    reason = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- Analytics (/api/analytics/…): the shapes of calls/analytics.py's plain data -------------------------


class AnalyticsQuerySerializer(serializers.Serializer):
    """?from=&to=&agent=&channel=: the scope of every analytics endpoint."""

    def get_fields(self) -> dict:
        # "from" is a Python keyword, so the fields are declared here rather than as attributes.
        return {
            "from": serializers.DateField(required=False, help_text="First day (ISO date, included); "
                                                                     "default: 29 days before `to`."),
            "to": serializers.DateField(required=False, help_text="Last day (ISO date, included); default: today."),
            "agent": serializers.SlugRelatedField(slug_field="slug", queryset=AgentConfig.objects.all(), required=False,
                                                  help_text="Only this agent's calls (its slug)."),
            "channel": serializers.ChoiceField(choices=Call.Channel.choices, required=False,
                                               help_text="Only calls on this channel."),
        }


class _CallFiguresSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Calls that started in the range.")
    answered = serializers.IntegerField(help_text="Calls that connected.")
    handled = serializers.IntegerField(help_text="Answered calls that have ended.")
    contained = serializers.IntegerField(help_text="Handled calls that ended without a transfer to a person.")
    containment_rate = serializers.FloatField(allow_null=True, help_text="contained / handled.")
    average_handle_seconds = serializers.FloatField(allow_null=True, help_text="Mean duration of handled calls.")


class _LatencyFiguresSerializer(serializers.Serializer):
    turns_measured = serializers.IntegerField(help_text="Turns with a voice-to-voice time.")
    voice_to_voice_p50_ms = serializers.IntegerField(allow_null=True)
    voice_to_voice_p95_ms = serializers.IntegerField(allow_null=True)


class _TurnaroundFiguresSerializer(serializers.Serializer):
    turnaround_average_seconds = serializers.FloatField(
        allow_null=True, help_text="From a call's end to the end of its post-call analysis, on average.")
    turnaround_p95_seconds = serializers.FloatField(allow_null=True)


class AnalyticsSummarySerializer(_CallFiguresSerializer, _LatencyFiguresSerializer, _TurnaroundFiguresSerializer):
    start = serializers.DateField()
    end = serializers.DateField()
    outcomes = serializers.DictField(child=serializers.IntegerField(),
                                     help_text='Calls per post-call outcome ("unknown": none yet), most first.')
    tickets_opened = serializers.IntegerField(help_text="Tickets linked to the calls.")


class AnalyticsDaySerializer(_CallFiguresSerializer, _LatencyFiguresSerializer, _TurnaroundFiguresSerializer):
    day = serializers.DateField()
    tickets_opened = serializers.IntegerField()


class AnalyticsIntentSerializer(_CallFiguresSerializer):
    intent = serializers.CharField(help_text='The call\'s intent ("unknown": none recognized).')


class AnalyticsLatencyDaySerializer(_LatencyFiguresSerializer):
    day = serializers.DateField()
    endpointing_p50_ms = serializers.IntegerField(allow_null=True, help_text="Silence until the turn ended.")
    stt_p50_ms = serializers.IntegerField(allow_null=True, help_text="Speech to text.")
    agent_p50_ms = serializers.IntegerField(allow_null=True, help_text="The dialog engine's answer.")
    tts_first_audio_p50_ms = serializers.IntegerField(allow_null=True, help_text="Text to the first audio.")


class _AnalyticsRowsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class AnalyticsDailySerializer(_AnalyticsRowsSerializer):
    results = AnalyticsDaySerializer(many=True, help_text="Every day of the range, days without calls included.")


class AnalyticsIntentsSerializer(_AnalyticsRowsSerializer):
    results = AnalyticsIntentSerializer(many=True, help_text="Most calls first.")


class AnalyticsLatencySerializer(_AnalyticsRowsSerializer):
    results = AnalyticsLatencyDaySerializer(many=True, help_text="Every day of the range.")


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
    call = serializers.UUIDField(source="call.public_id", read_only=True, allow_null=True)

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
