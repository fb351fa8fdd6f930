import datetime
import ipaddress
import secrets
import socket
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
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
    provider_error = models.TextField(blank=True, help_text="The phone network's last error for this call.")
    # Outbound: what the flow may use ({context.driver_name}), set by whoever placed the call.
    variables = models.JSONField(default=dict, blank=True, help_text="Context for the agent, e.g. driver and load.")
    answered_by = models.CharField(
        max_length=24, blank=True, help_text="Outbound: answering-machine detection (human, machine_end_beep…)."
    )
    attempt = models.PositiveSmallIntegerField(default=1, help_text="Outbound: 1 for the first dial, 2 for a retry…")
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries",
        help_text="Outbound: the attempt this one retries.",
    )
    retry_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Outbound: when the next attempt is dialed (busy or no answer)."
    )
    # The API client's Idempotency-Key (prefixed with its user id): a retried request finds this
    # call instead of dialing again.
    request_key = models.CharField(max_length=200, blank=True, editable=False)
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
    # Stamped every few seconds by the process serving a live call; a call whose heartbeat
    # stopped lost its process (kill -9, crash) and is finalized by the sweep (calls/sweeps.py).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
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
        indexes = [
            models.Index(fields=["agent", "-started_at"]), models.Index(fields=["customer", "-started_at"]),
            # The sweep reads live calls only: a small partial index, not one over every call ever made.
            models.Index(fields=["heartbeat_at"], condition=Q(status="in_progress"), name="call_live_heartbeat"),
            models.Index(fields=["retry_due_at"], condition=Q(retry_due_at__isnull=False), name="call_retry_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_call_id"],
                condition=~Q(provider_call_id=""),
                name="call_provider_id_unique_per_channel",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")), name="call_ends_after_start"
            ),
            models.UniqueConstraint(fields=["request_key"], condition=~Q(request_key=""), name="call_request_key_unique"),
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
    # Set by post-call actions: a re-run that reaches the same action finds the key taken
    # and creates nothing (no second ticket, no second appointment).
    idempotency_key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["call", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "idempotency_key"], condition=~Q(idempotency_key=""), name="call_event_idempotency_key"
            )
        ]

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


# --- Post-call analysis -------------------------------------------------------------------------


class AnalysisStageName(models.TextChoices):
    TRANSCRIBE = "transcribe", "Transcribe recording"
    SUMMARIZE = "summarize", "Summarize"
    EXTRACT = "extract", "Extract fields"
    ACT = "act", "CRM actions"
    NOTIFY = "notify", "Webhooks"
    ANALYTICS = "analytics", "Analytics"


class AnalysisBatch(models.Model):
    """A bulk re-run started from the admin; its progress page counts the runs."""

    class Kind(models.TextChoices):
        RERUN = "rerun", "Re-run analysis"
        REEXTRACT = "reextract", "Re-extract with the current schema"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analysis batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.total} calls at {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"


class AnalysisRun(models.Model):
    """One pass of the post-call pipeline over a call.

    The row is also the outbox: it is written in the same transaction as the call's end,
    and `dispatched_at` stays empty until the broker has accepted the first task, so a
    periodic sweep can send what a broker outage kept back.
    """

    class Reason(models.TextChoices):
        CALL_ENDED = "call_ended", "Call ended"
        RERUN = "rerun", "Re-run"
        REEXTRACT = "reextract", "Re-extract"
        OPERATOR = "operator", "Operator command"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="analysis_runs")
    number = models.PositiveIntegerField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    batch = models.ForeignKey(AnalysisBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=0)
    dispatch_error = models.TextField(blank=True)
    error = models.TextField(blank=True)
    changes = models.JSONField(default=list, blank=True, help_text="Field-by-field changes of the extracted data.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["call", "number"], name="analysis_run_number_unique"),
            # The database, not only the code, guarantees one pipeline run per ended call.
            models.UniqueConstraint(
                fields=["call"], condition=Q(reason="call_ended"), name="analysis_one_run_per_call_end"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(dispatched_at__isnull=True), name="analysis_run_undispatched"),
        ]

    def __str__(self) -> str:
        return f"Analysis #{self.number} of {self.call} ({self.get_status_display()})"

    @property
    def turnaround_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.created_at).total_seconds(), 3)


class AnalysisStage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    FINISHED = {Status.DONE, Status.FAILED, Status.SKIPPED}

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=16, choices=AnalysisStageName.choices)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Celery task that holds the stage, and until when: a redelivery of the same
    # message may take it back at once, a different message only after the lease expires.
    task_id = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="analysis_stage_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.get_name_display()}: {self.get_status_display()}"


class CallTranscript(models.Model):
    """The post-call transcript of the recording, kept beside the live turns (which stay as they were)."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="final_transcript")
    model = models.CharField(max_length=200)
    beam_size = models.PositiveSmallIntegerField()
    language = models.CharField(max_length=8, blank=True)
    # [{"speaker": "caller"|"agent"|"mixed", "start": s, "end": s, "text": ..., "confidence": 0..1}]
    segments = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    audio_seconds = models.FloatField(default=0.0)
    elapsed_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Transcript of {self.call}"


class AgentDailyStats(models.Model):
    """Per agent and day, recomputed from the day's calls (so a re-run never double-counts)."""

    agent = models.ForeignKey("agents.AgentConfig", on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    calls = models.PositiveIntegerField(default=0)
    contained = models.PositiveIntegerField(default=0, help_text="Calls that ended without a transfer.")
    containment_rate = models.FloatField(null=True, blank=True)
    average_duration_seconds = models.FloatField(null=True, blank=True)
    intents = models.JSONField(default=dict, blank=True)
    analyzed_calls = models.PositiveIntegerField(default=0)
    extraction_completeness = models.FloatField(
        null=True, blank=True, help_text="Share of schema fields filled with valid values, over analyzed calls."
    )
    turns_measured = models.PositiveIntegerField(default=0)
    voice_to_voice_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    voice_to_voice_p95_ms = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "agent"]
        verbose_name = "daily agent statistics"
        verbose_name_plural = "daily agent statistics"
        constraints = [models.UniqueConstraint(fields=["agent", "day"], name="agent_daily_stats_unique")]

    def __str__(self) -> str:
        return f"{self.agent} on {self.day}"


# --- Outbound webhooks ------------------------------------------------------------------------------


class WebhookEvent(models.TextChoices):
    CALL_STARTED = "call.started", "call.started"
    CALL_ENDED = "call.ended", "call.ended"
    CALL_ANALYZED = "call.analyzed", "call.analyzed"
    TICKET_CREATED = "ticket.created", "ticket.created"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def validate_webhook_events(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = [item for item in value if item not in WebhookEvent.values]
    if unknown:
        raise ValidationError(f"Unknown events: {', '.join(map(str, unknown))}. Known: {', '.join(WebhookEvent.values)}.")


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookTargetRefused(Exception):
    """A webhook URL that points into our own network (SSRF), not at a receiver on the internet."""


def webhook_address_problem(address: IpAddress) -> str | None:
    """Why a webhook must not connect to `address`, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 written as IPv6 (::ffff:127.0.0.1, 6to4, NAT64) reaches the IPv4 host it embeds.
        embedded = address.ipv4_mapped or address.sixtofour or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None)
        if embedded is not None and (problem := webhook_address_problem(embedded)):
            return f"{address} embeds {problem}"
    for attribute, kind in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                            ("is_multicast", "multicast"), ("is_unspecified", "unspecified"),
                            ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(address, attribute):
            return f"{address}, a {kind} address"
    if not address.is_global:
        return f"{address}, not a global address"
    return None


def _allowed_private(host: str, address: IpAddress) -> bool:
    """WEBHOOK_ALLOWED_PRIVATE_HOSTS lists host names and IP addresses or networks (on-premise receivers)."""
    for entry in settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS:
        entry = entry.strip().lower()
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if entry and entry.rstrip(".") == host.lower().rstrip("."):
                return True
            continue
        if network.version == address.version and address in network:
            return True
    return False


def webhook_target_addresses(*, host: str, port: int) -> list[IpAddress]:
    """Resolve `host` once and check every address it has; the caller connects to one of these.

    Raises WebhookTargetRefused when any address is not public (one bad address is enough: a
    client may pick any of them), socket.gaierror when the name does not resolve.
    """
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        # Scope ids (fe80::1%eth0) are cut: the address itself is what is checked.
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    for address in addresses:
        problem = webhook_address_problem(address)
        if problem and not _allowed_private(host, address):
            raise WebhookTargetRefused(
                f"{host} resolves to {problem}; webhooks only go to public addresses "
                "(WEBHOOK_ALLOWED_PRIVATE_HOSTS lists on-premise receivers)")
    return addresses


def validate_webhook_url(value: str) -> None:
    URLValidator(schemes=["http", "https"])(value)
    parts = urlsplit(value)
    try:
        webhook_target_addresses(host=parts.hostname or "", port=parts.port or (443 if parts.scheme == "https" else 80))
    except WebhookTargetRefused as exc:
        raise ValidationError(str(exc)) from None
    except (socket.gaierror, UnicodeError):
        pass  # Not resolvable now: every delivery resolves and checks it again before connecting.


class WebhookEndpoint(models.Model):
    """Where signed event notifications go, configured by a supervisor."""

    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500, validators=[validate_webhook_url],
                          help_text="Receives POST requests with a JSON body. Public addresses only.")
    secret = models.CharField(
        max_length=100, default=new_webhook_secret, help_text="Signs every request (X-VoiceCRM-Signature)."
    )
    # After a rotation requests are signed with both secrets until this expires, so receivers
    # can switch over without dropping events (docs/webhooks.md).
    previous_secret = models.CharField(max_length=100, blank=True)
    rotation_overlap_until = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(default=list, validators=[validate_webhook_events])
    agent = models.ForeignKey(
        "agents.AgentConfig", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints",
        help_text="Only events of this agent's calls; leave empty for all.",
    )
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def subscribes_to(self, event: str) -> bool:
        return event in (self.events or [])

    def signing_secrets(self, *, now: datetime.datetime) -> list[str]:
        """The current secret, then the previous one while its overlap window lasts."""
        if self.previous_secret and self.rotation_overlap_until and now < self.rotation_overlap_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact body, retried until it is accepted or 24 h pass."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=WebhookEvent.choices, db_index=True)
    event_id = models.UUIDField(help_text="Identical for every endpoint; receivers deduplicate on it.")
    dedupe_key = models.CharField(max_length=200)
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries")
    body = models.TextField(help_text="Sent byte for byte on every attempt.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "dedupe_key"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP request."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"Attempt {self.number}: {self.response_status or self.error[:40]}"
