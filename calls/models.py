import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


def recording_path(call: "Call", filename: str) -> str:
    return f"recordings/{timezone.now():%Y/%m/%d}/{call.public_id}.wav"


class Call(models.Model):
    class Channel(models.TextChoices):
        BROWSER = "browser", "Browser widget"
        TWILIO = "twilio", "Twilio"
        ASTERISK = "asterisk", "Asterisk"
        TEXT = "text", "Text chat"
        API = "api", "API"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        CANCELED = "canceled", "Canceled"

    class AnalysisStatus(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Sentiment(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEUTRAL = "neutral", "Neutral"
        NEGATIVE = "negative", "Negative"

    TERMINAL_STATUSES = {Status.COMPLETED, Status.FAILED, Status.NO_ANSWER, Status.BUSY, Status.CANCELED}
    # queued → ringing → in progress → a terminal status; a call may be answered without ringing.
    TRANSITIONS = {
        Status.QUEUED: {Status.RINGING, Status.IN_PROGRESS, *TERMINAL_STATUSES},
        Status.RINGING: {Status.IN_PROGRESS, *TERMINAL_STATUSES},
        Status.IN_PROGRESS: {Status.COMPLETED, Status.FAILED},
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices, db_index=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.INBOUND)
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    provider_call_id = models.CharField(max_length=64, blank=True, help_text="Twilio CallSid, Asterisk UUID…")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    agent = models.ForeignKey("agents.AgentConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    agent_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    end_reason = models.CharField(max_length=64, blank=True, help_text="caller_hangup, agent_end, transfer, timeout…")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    recording = models.FileField(upload_to=recording_path, blank=True)
    # Outcome of the conversation and of the post-call analysis.
    intent = models.CharField(max_length=64, blank=True, db_index=True)
    summary = models.TextField(blank=True)
    sentiment = models.CharField(max_length=8, choices=Sentiment.choices, blank=True)
    outcome = models.CharField(max_length=64, blank=True, db_index=True)
    structured_data = models.JSONField(default=dict, blank=True)
    extraction_errors = models.JSONField(default=list, blank=True)
    schema_version = models.PositiveIntegerField(null=True, blank=True, help_text="Agent version the data was extracted with.")
    analysis_status = models.CharField(
        max_length=16, choices=AnalysisStatus.choices, default=AnalysisStatus.NOT_STARTED, db_index=True
    )
    analysis_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["agent", "-started_at"]), models.Index(fields=["customer", "-started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_call_id"],
                condition=~Q(provider_call_id=""),
                name="call_provider_id_unique_per_channel",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")), name="call_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        who = self.from_number or self.get_channel_display()
        return f"Call {str(self.public_id)[:8]} from {who} at {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    def can_transition(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())

    def transition(self, status: str, *, at=None) -> None:
        """Move along the lifecycle, stamping answered/ended times. Caller saves."""
        if not self.can_transition(status):
            raise ValidationError(f"A call cannot go from {self.status} to {status}.")
        at = at or timezone.now()
        self.status = status
        if status == self.Status.IN_PROGRESS and not self.answered_at:
            self.answered_at = at
        if status in self.TERMINAL_STATUSES:
            self.ended_at = max(at, self.started_at)
            self.duration_seconds = round((self.ended_at - (self.answered_at or self.started_at)).total_seconds(), 3)


class Turn(models.Model):
    class Speaker(models.TextChoices):
        CALLER = "caller", "Caller"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    speaker = models.CharField(max_length=8, choices=Speaker.choices)
    text = models.TextField(blank=True, help_text="What was said (for the agent: what was generated).")
    heard_text = models.TextField(blank=True, help_text="What the caller actually heard when interrupted.")
    interrupted = models.BooleanField(default=False)
    partial = models.BooleanField(default=False, help_text="Cut off by the end of the call.")
    intent = models.CharField(max_length=64, blank=True)
    start_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Offset from the start of the call.")
    end_ms = models.PositiveIntegerField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    # Stage timings in milliseconds.
    endpointing_ms = models.PositiveIntegerField(null=True, blank=True)
    stt_ms = models.PositiveIntegerField(null=True, blank=True)
    agent_ms = models.PositiveIntegerField(null=True, blank=True)
    tts_first_audio_ms = models.PositiveIntegerField(null=True, blank=True)
    voice_to_voice_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Measured by the server.")
    client_voice_to_voice_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Measured by the caller's browser."
    )
    tts_engine = models.CharField(max_length=32, blank=True, help_text="Set when a fallback engine spoke.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call", "index"]
        constraints = [models.UniqueConstraint(fields=["call", "index"], name="turn_index_unique_per_call")]

    def __str__(self) -> str:
        return f"{self.get_speaker_display()} #{self.index}: {self.text[:60]}"


class CallEvent(models.Model):
    class Kind(models.TextChoices):
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        DTMF = "dtmf", "DTMF"
        TRANSFER = "transfer", "Transfer"
        BARGE_IN = "barge_in", "Barge-in"
        ESCALATION = "escalation", "Escalation"
        ACTION = "action", "CRM action"
        ERROR = "error", "Error"
        STATUS_CHANGE = "status_change", "Status change"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    name = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["call", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}".strip()


class InformationRecord(models.Model):
    """A fact the caller shared, grouped by category; new categories need no code change."""

    SUGGESTED_CATEGORIES = ["contact_details", "debt_info", "personal_info", "qualification", "conversation_flow"]

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="information")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="information"
    )
    category = models.SlugField(max_length=48, db_index=True)
    key = models.CharField(max_length=64)
    value = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call", "category", "key"]
        constraints = [models.UniqueConstraint(fields=["call", "category", "key"], name="information_unique_key")]

    def __str__(self) -> str:
        return f"{self.category}.{self.key} = {self.value[:40]}"
