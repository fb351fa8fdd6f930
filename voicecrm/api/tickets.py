"""Tickets and their comments, written through the ticket services (SLA due times, status rules,
first-response stamps, the ticket.created event), as the admin and the agent's tools do."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from tickets.models import Ticket, TicketComment
from tickets.serializers import TicketCommentSerializer, TicketSerializer
from tickets.services import ticket_comment_add, ticket_create, ticket_update
from voicecrm.api.common import ActionPermissions, BooleanFilter, errors, service_error
from voicecrm.api.filters import IdFilter, IsoDateTimeFilter
from voicecrm.api.permissions import RoleWritableFieldsMixin


class TicketFilter(filters.FilterSet):
    customer = IdFilter()
    assignee = IdFilter()
    call = filters.UUIDFilter(field_name="call__public_id", help_text="The call's id (a UUID).")
    open = BooleanFilter(method="filter_open", help_text="New, open or pending (true), or not (false).")
    overdue = BooleanFilter(method="filter_overdue", help_text="Open and past its resolution due time.")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields = ["status", "priority", "category", "customer", "assignee", "call", "open", "overdue",
                  "created_after", "created_before"]

    def filter_open(self, queryset, name, value):
        condition = Q(status__in=Ticket.OPEN_STATUSES)
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def filter_overdue(self, queryset, name, value):
        condition = Q(status__in=Ticket.OPEN_STATUSES, sla_due_at__lt=timezone.now())
        return queryset.filter(condition) if value else queryset.exclude(condition)


WRITE_RULES = ("A new priority moves both due times (from the opening time); resolving or closing stamps "
               "`resolved_at`, reopening clears it. Due times and stamps are read-only.")


@extend_schema_view(
    list=extend_schema(description="Tickets, newest first, with their comments. Filter by status, priority, "
                                   "category, customer, assignee, call, `open` and `overdue`; `?search=` over the "
                                   "reference, subject, description and the customer's account number and name.",
                       responses={200: TicketSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One ticket with its comments.", responses={200: TicketSerializer, **errors(404)}),
    create=extend_schema(description="Open a ticket (Supervisor, Agent): due times come from the SLA policy of its "
                                     "priority, and `ticket.created` webhooks go out.",
                         responses={201: TicketSerializer, **errors(400, 413)},
                         examples=[OpenApiExample("Outage", request_only=True, value={
                             "subject": "Router keeps dropping", "category": "technical", "priority": "high",
                             "customer": 12})]),
    update=extend_schema(description=f"Replace a ticket's editable fields (Supervisor, Agent). {WRITE_RULES}",
                         responses={200: TicketSerializer, **errors(400, 404, 413)}),
    partial_update=extend_schema(description=f"Change some of a ticket's fields (Supervisor, Agent). {WRITE_RULES}",
                                 responses={200: TicketSerializer, **errors(400, 404, 413)},
                                 examples=[OpenApiExample("Resolve", request_only=True, value={"status": "resolved"})]),
    destroy=extend_schema(description="Delete a ticket and its comments (Supervisor).",
                          responses={204: None, **errors(404)}),
)
class TicketViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = Ticket.objects.select_related("call")
    serializer_class = TicketSerializer
    permission_classes = [ActionPermissions]
    action_permissions = {"comments": {
        "GET": ["tickets.view_ticket", "tickets.view_ticketcomment"],
        "POST": ["tickets.view_ticket", "tickets.add_ticketcomment"],
    }}
    filterset_class = TicketFilter
    search_fields = ["reference", "subject", "description", "customer__account_number", "customer__last_name"]
    ordering_fields = ["created_at", "updated_at", "sla_due_at", "first_response_due_at", "reference"]
    ordering = ["-created_at", "-id"]
    # Agents work tickets end to end and comment on them; due times and stamps are the services'
    # (read-only fields), and deleting is a Supervisor's (the model permission).
    role_writable_fields = {"Agent": ["customer", "category", "subject", "description", "priority", "status",
                                      "assignee", "body", "internal"]}

    def get_queryset(self):
        queryset = super().get_queryset()
        # The comments action pages through the comments itself.
        return queryset if self.action == "comments" else queryset.prefetch_related("comments")

    def get_serializer_class(self):
        return TicketCommentSerializer if self.action == "comments" else TicketSerializer

    # The services own due times, resolution stamps and the ticket.created event: the serializer
    # only validates, and its save() is never called.
    def perform_create(self, serializer):
        try:
            serializer.instance = ticket_create(**serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = ticket_update(ticket=serializer.instance, **serializer.validated_data)
        except DjangoValidationError as error:
            raise service_error(error) from None

    @extend_schema(methods=["GET"], description="A ticket's comments, oldest first.",
                   responses={200: TicketCommentSerializer(many=True), **errors(404)})
    @extend_schema(methods=["POST"], request=TicketCommentSerializer,
                   description="Comment on a ticket (Supervisor, Agent), signed by the user. The first public "
                               "comment (not `internal`) stamps the ticket's `first_responded_at`.",
                   responses={201: TicketCommentSerializer, **errors(400, 404, 413)},
                   examples=[OpenApiExample("Reply", request_only=True, value={
                       "body": "A technician is on the way.", "internal": False})])
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def comments(self, request, pk=None):
        ticket = self.get_object()
        if request.method == "POST":
            serializer = TicketCommentSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            comment = ticket_comment_add(ticket=ticket, author=request.user, **serializer.validated_data)
            return Response(TicketCommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        comments = self.paginate_queryset(TicketComment.objects.filter(ticket=ticket).order_by("created_at", "id"))
        return self.get_paginated_response(TicketCommentSerializer(comments, many=True).data)
