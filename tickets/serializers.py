"""The REST API's shapes of tickets and their comments; every write goes through tickets/services.py."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from tickets.models import Ticket, TicketComment


class TicketCommentSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketComment
        fields = ["id", "author", "body", "internal", "created_at"]
        read_only_fields = ["author", "created_at"]
        extra_kwargs = {
            "author": {"help_text": "The user who wrote it (the one signed in); empty for the system's notes."},
            "body": {"max_length": 10_000},
        }


class TicketSerializer(serializers.ModelSerializer):
    comments = TicketCommentSerializer(many=True, read_only=True)
    # Calls are addressed by their public id in the API (/calls/{id}/). allow_null without a
    # default: no call reads as null (DRF skips a default in a PATCH's answer).
    call = serializers.UUIDField(source="call.public_id", read_only=True, allow_null=True,
                                 help_text="The call the ticket came from, if any.")
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True, is_staff=True), required=False, allow_null=True,
        help_text="A staff user's id.",
    )

    class Meta:
        model = Ticket
        fields = [
            "id", "reference", "customer", "call", "category", "subject", "description", "priority", "status",
            "assignee", "first_response_due_at", "sla_due_at", "first_responded_at", "resolved_at", "created_at",
            "updated_at", "comments",
        ]
        read_only_fields = [
            "reference", "first_response_due_at", "sla_due_at", "first_responded_at", "resolved_at", "created_at",
            "updated_at",
        ]
        extra_kwargs = {"description": {"max_length": 20_000}}
