from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F

from agents.validators import (
    agent_identity_errors,
    validate_extraction_schema,
    validate_flow,
    validate_rule_list,
    validate_string_list,
)


class AgentConfig(models.Model):
    """Everything that shapes one voice agent, edited by supervisors in the admin."""

    class Scenario(models.TextChoices):
        CUSTOMER_SERVICE = "customer_service", "Customer service"
        DRIVER_CHECK_IN = "driver_check_in", "Driver check-in"
        LEAD_QUALIFICATION = "lead_qualification", "Lead qualification"
        RECEPTION = "reception", "Reception"

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    scenario = models.CharField(max_length=32, choices=Scenario.choices, default=Scenario.CUSTOMER_SERVICE)
    language = models.CharField(max_length=8, default="en")
    greeting = models.TextField(default="Hello, thanks for calling. How can I help you today?")
    closing = models.TextField(default="Thanks for calling. Goodbye!")
    persona = models.TextField(blank=True, help_text="System prompt: who the agent is and how it speaks.")
    # Voice
    voice = models.CharField(max_length=200, default="joe", help_text='"joe" or a path to a Piper .onnx voice.')
    speaking_rate = models.FloatField(default=1.0, validators=[MinValueValidator(0.5), MaxValueValidator(2.0)])
    stt_model = models.CharField(max_length=200, default="tiny.en", help_text='"tiny.en", "base" or a model directory.')
    endpointing_silence_ms = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(100), MaxValueValidator(3000)],
        help_text="Silence that ends the caller's turn.",
    )
    barge_in_enabled = models.BooleanField(default=True)
    barge_in_min_ms = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(60), MaxValueValidator(2000)],
        help_text="Caller speech needed to interrupt the agent.",
    )
    silence_reprompt_seconds = models.PositiveIntegerField(default=8, validators=[MinValueValidator(2)])
    silence_hangup_seconds = models.PositiveIntegerField(default=25, validators=[MinValueValidator(5)])
    max_call_seconds = models.PositiveIntegerField(default=900, validators=[MinValueValidator(30)])
    # Behaviour
    enabled_tools = models.JSONField(default=list, blank=True, validators=[validate_string_list])
    flow = models.JSONField(
        default=dict, blank=True, validators=[validate_flow],
        help_text="Slot-filling flow (docs/flows.md); empty uses the built-in flow for the scenario.",
    )
    extraction_schema = models.JSONField(
        default=dict, blank=True, validators=[validate_extraction_schema],
        help_text="JSON Schema of the fields extracted from each call.",
    )
    escalation_rules = models.JSONField(
        default=list, blank=True, validators=[validate_rule_list],
        help_text='e.g. [{"when": {"injury_status": ["minor", "serious"]}, "action": "urgent_ticket"}]',
    )
    transfer_target = models.CharField(max_length=64, blank=True, help_text="Phone number or SIP URI for transfers.")
    trust_caller_id = models.BooleanField(
        default=False,
        help_text=(
            "Treat a caller whose phone number matches a customer's as that customer, verified, and greet them by "
            "name. Faster for callers, but caller ID can be spoofed: anyone who fakes a customer's number gets their "
            "account. Off: a caller ID match only identifies the caller, who still verifies before anything private."
        ),
    )
    # Outbound calls (telephony/outbound.py).
    voicemail_message = models.TextField(
        blank=True,
        help_text="Left when an outbound call reaches an answering machine (after the beep); then the call ends. "
        "Empty: hang up without a message. May use {context.<name>} variables of the call.",
    )
    retry_attempts = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(10)],
        help_text="Outbound calls: how many more times to dial a number that was busy or did not answer.",
    )
    retry_spacing_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="Outbound calls: minutes between one attempt's end and the next.",
    )
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "agent configuration"

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    def save(self, *args, **kwargs) -> None:
        # The schema is checked here too, not only in forms: calls record the version
        # they were extracted with, so a stored schema must always be valid.
        validate_extraction_schema(self.extraction_schema)
        validate_string_list(self.enabled_tools)
        validate_rule_list(self.escalation_rules)
        validate_flow(self.flow)
        # Nor may any save turn off verification for tools that need it (the tools are a public API).
        errors = self.identity_errors()
        if errors:
            raise ValidationError(errors)
        if self._state.adding:
            super().save(*args, **kwargs)
            return
        # F() so two supervisors saving at once get two versions, not one.
        self.version = F("version") + 1
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version", "updated_at"}
        super().save(*args, **kwargs)
        self.refresh_from_db(fields=["version"])

    def identity_errors(self) -> list[str]:
        return agent_identity_errors(enabled_tools=self.enabled_tools or [], flow=self.flow or {}, scenario=self.scenario,
                                     trust_caller_id=self.trust_caller_id)

    def clean(self) -> None:
        if isinstance(self.enabled_tools, list) and isinstance(self.flow, dict):
            errors = self.identity_errors()
            if errors:
                raise ValidationError({"enabled_tools": errors})


class KnowledgeEntry(models.Model):
    agent = models.ForeignKey(
        AgentConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="knowledge",
        help_text="Leave empty to share with every agent.",
    )
    title = models.CharField(max_length=200, help_text="The question, as a caller would ask it.")
    answer = models.TextField()
    tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]
