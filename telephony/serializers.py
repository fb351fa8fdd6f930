"""The API's request to place an outbound call (POST /api/calls/); validation beyond shapes is
telephony/outbound.py's, so the API and the admin's "Call now" refuse the same requests."""

from rest_framework import serializers

from agents.models import AgentConfig
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
