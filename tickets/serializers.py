from rest_framework import serializers

from tickets.models import Ticket, TicketComment


class TicketCommentSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketComment
        fields = ["id", "author", "body", "internal", "created_at"]
        read_only_fields = ["author", "created_at"]


class TicketSerializer(serializers.ModelSerializer):
    comments = TicketCommentSerializer(many=True, read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id", "reference", "customer", "call", "category", "subject", "description", "priority", "status",
            "assignee", "first_response_due_at", "sla_due_at", "first_responded_at", "resolved_at", "created_at",
            "comments",
        ]
        read_only_fields = [
            "reference", "call", "first_response_due_at", "sla_due_at", "first_responded_at", "resolved_at", "created_at",
        ]
