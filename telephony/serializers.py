"""The API's request to place an outbound call (POST /api/calls/), and routes (/api/routes/);
validation beyond shapes is telephony/outbound.py's and the Route model's, so the API and the
admin refuse the same requests."""

from rest_framework import serializers

from agents.models import AgentConfig
from telephony.models import Route
from telephony.outbound import CHANNEL_ROUTES, MAX_VARIABLES


class OutboundCallSerializer(serializers.Serializer):
    agent = serializers.SlugRelatedField(
        slug_field="slug", queryset=AgentConfig.objects.filter(active=True),
        help_text="The agent that makes the call (its slug); it needs a phone line (a route).",
    )
    to = serializers.CharField(max_length=32, help_text="E.164 number (or an Asterisk extension) to call.")
    variables = serializers.DictField(
        required=False, default=dict, help_text=f"Up to {MAX_VARIABLES} values the flow reads as {{context.<name>}}.",
    )
    channel = serializers.ChoiceField(
        choices=sorted(CHANNEL_ROUTES), required=False, allow_blank=True, default="",
        help_text="Only when the agent has lines on both.",
    )


class OriginsField(serializers.ListField):
    """Route.allowed_origins is one origin a line; the API reads and writes a list."""

    child = serializers.CharField(max_length=200)

    def to_representation(self, value: str) -> list[str]:
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def to_internal_value(self, data) -> str:
        return "\n".join(origin.strip() for origin in super().to_internal_value(data))


class RouteSerializer(serializers.ModelSerializer):
    """A route: which phone number, Asterisk extension or widget key reaches which agent.

    Rules (Route.clean(), through telephony/services.py): a phone number in any format is stored
    in E.164; an extension is digits, * and #; a widget key left empty is generated; origins are
    scheme and host only (https://shop.example).
    """

    agent = serializers.SlugRelatedField(slug_field="slug", queryset=AgentConfig.objects.all(),
                                         help_text="The agent's slug.")
    allowed_origins = OriginsField(
        required=False, max_length=50,
        help_text="Widget keys only: the origins allowed to embed the widget, e.g. https://shop.example.",
    )

    class Meta:
        model = Route
        fields = ["id", "kind", "address", "agent", "label", "allowed_origins", "active", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"address": {"required": False, "allow_blank": True, "help_text": (
            "E.164 number (any format is normalised), extension, or widget key (left empty: generated).")}}
        # The (kind, address) constraint is checked by the model's full_clean in the service, with
        # the address already normalised: DRF's own check would compare the unnormalised text.
        validators: list = []
