import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from core.phones import normalize_phone


def new_widget_key() -> str:
    return secrets.token_urlsafe(18)


class Route(models.Model):
    """Which phone number, Asterisk extension or browser widget key reaches which agent."""

    class Kind(models.TextChoices):
        PHONE_NUMBER = "phone_number", "Phone number (Twilio)"
        ASTERISK_EXTENSION = "asterisk_extension", "Asterisk extension"
        WIDGET_KEY = "widget_key", "Browser widget key"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    address = models.CharField(
        max_length=64, help_text="E.164 number, extension, or widget key (left empty, a key is generated)."
    )
    agent = models.ForeignKey("agents.AgentConfig", on_delete=models.CASCADE, related_name="routes")
    label = models.CharField(max_length=120, blank=True)
    allowed_origins = models.TextField(
        blank=True, help_text="Widget keys only: origins allowed to embed the widget, one per line (https://shop.example)."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "address"]
        constraints = [models.UniqueConstraint(fields=["kind", "address"], name="route_address_unique_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address} → {self.agent.name}"

    @property
    def origin_list(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and origin.rstrip("/") in self.origin_list

    def clean(self) -> None:
        if self.kind == self.Kind.WIDGET_KEY and not self.address:
            self.address = new_widget_key()
        if self.kind == self.Kind.PHONE_NUMBER:
            self.address = normalize_phone(self.address)
        if self.kind == self.Kind.ASTERISK_EXTENSION and not self.address.replace("*", "").replace("#", "").isalnum():
            raise ValidationError({"address": "An extension is digits (and * or #)."})
        for origin in self.origin_list:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValidationError({"allowed_origins": f"{origin!r} is not an origin like https://shop.example."})
