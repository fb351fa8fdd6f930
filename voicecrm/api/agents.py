"""Agents, their version history and knowledge entries, written through agents/services.py with the
admin's validation. Supervisors write; every role reads (the version history: those who may read
the audit log)."""

from auditlog.models import LogEntry
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission

from agents.models import AgentConfig, KnowledgeEntry
from agents.serializers import AgentConfigSerializer, AgentVersionSerializer, KnowledgeEntrySerializer
from agents.services import (
    AgentInUse,
    agent_create,
    agent_delete,
    agent_update,
    knowledge_entry_create,
    knowledge_entry_update,
)
from voicecrm.api.common import BooleanFilter, Conflict, errors
from voicecrm.api.permissions import RoleWritableFieldsMixin


class CanReadHistory(BasePermission):
    message = "Your role cannot read the audit log."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perms(["agents.view_agentconfig", "auditlog.view_logentry"])


class AgentFilter(filters.FilterSet):
    active = BooleanFilter()

    class Meta:
        model = AgentConfig
        fields = ["scenario", "active", "language"]  # scenario is a choice: an unknown one is a 400


class KnowledgeFilter(filters.FilterSet):
    active = BooleanFilter()

    class Meta:
        model = KnowledgeEntry
        fields = ["active"]


_SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The agent's slug.")
_AGENT = OpenApiParameter("agent_slug", str, OpenApiParameter.PATH, description="The agent's slug.")
_ENTRY = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The entry's id.")
_CHECK_IN = OpenApiExample("Driver check-in agent", request_only=True, value={
    "name": "Dispatch", "slug": "dispatch", "scenario": "driver_check_in",
    "greeting": "Hi, this is dispatch.", "enabled_tools": ["share_information", "transfer_to_human", "end_call"],
    "extraction_schema": {"type": "object", "properties": {
        "driver_status": {"enum": ["on_time", "delayed", "arrived"]}, "eta": {"type": "string"}}},
    "escalation_rules": [{"when": {"driver_status": ["delayed"]}, "action": "urgent_ticket"}],
    "voicemail_message": "Hi {context.driver_name}, please call dispatch back.", "retry_attempts": 2})


@extend_schema_view(
    list=extend_schema(description="Agents by name. Filter by scenario, active and language; search name, slug, "
                                   "greeting and persona."),
    retrieve=extend_schema(description="One agent's whole configuration.", parameters=[_SLUG]),
    create=extend_schema(description="Create an agent (Supervisors). Validated as in the admin: the flow "
                                     "(docs/flows.md), the extraction schema (a JSON Schema object of string, number, "
                                     "integer, boolean or enum fields), the escalation rules, and tools that need a "
                                     "verified caller only with verify_customer. 400 names each bad field.",
                         examples=[_CHECK_IN]),
    update=extend_schema(description="Replace an agent's configuration: saved as its next version.",
                         parameters=[_SLUG]),
    partial_update=extend_schema(description="Change some fields: saved as the agent's next version.",
                                 parameters=[_SLUG]),
    destroy=extend_schema(description="Delete an agent no phone number or widget key points at (409 otherwise: "
                                      "remove its routes, or set `active` to false). Its calls keep their record.",
                          parameters=[_SLUG], responses={204: None, **errors(404, 409)}),
)
class AgentViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = AgentConfig.objects.all()
    serializer_class = AgentConfigSerializer
    lookup_field = "slug"
    filterset_class = AgentFilter
    search_fields = ["name", "slug", "greeting", "persona"]
    ordering_fields = ["name", "slug", "version", "updated_at"]

    def perform_create(self, serializer):
        serializer.instance = agent_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = agent_update(agent=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        try:
            agent_delete(agent=instance)
        except AgentInUse as error:
            raise Conflict(error.message) from None

    @extend_schema(parameters=[_SLUG], responses={200: AgentVersionSerializer(many=True), **errors(404)})
    @action(detail=True, permission_classes=[CanReadHistory])
    def versions(self, request, slug=None):
        """The agent's saves, newest first: the version each made, when, by whom and what changed
        (from the audit log; Supervisors). The agent's current number is its `version`."""
        agent = self.get_object()
        entries = LogEntry.objects.get_for_object(agent).select_related("actor").order_by("-timestamp", "-pk")
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AgentVersionSerializer(page, many=True).data)

    def filter_queryset(self, queryset):
        # The history is the audit log's, not a list of agents: the agents' filters do not apply.
        return queryset if self.action == "versions" else super().filter_queryset(queryset)


class _KnowledgeViewSet(RoleWritableFieldsMixin, viewsets.ModelViewSet):
    queryset = KnowledgeEntry.objects.select_related("agent")
    serializer_class = KnowledgeEntrySerializer
    filterset_class = KnowledgeFilter
    search_fields = ["title", "answer", "tags"]
    ordering_fields = ["title", "updated_at"]

    def entry_agent(self) -> AgentConfig | None:
        raise NotImplementedError

    def get_queryset(self):
        return super().get_queryset().filter(agent=self.entry_agent())

    def perform_create(self, serializer):
        agent = self.entry_agent()
        serializer.instance = knowledge_entry_create(agent=agent, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = knowledge_entry_update(entry=serializer.instance, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(description="The agent's own knowledge entries (shared ones: /knowledge/shared/).",
                       parameters=[_AGENT]),
    create=extend_schema(description="Add an entry the agent's search_knowledge_base tool finds (Supervisors).",
                         parameters=[_AGENT]),
    retrieve=extend_schema(description="One of the agent's entries.", parameters=[_AGENT, _ENTRY]),
    update=extend_schema(description="Replace one of the agent's entries (Supervisors).", parameters=[_AGENT, _ENTRY]),
    partial_update=extend_schema(description="Change one of the agent's entries (Supervisors).",
                                 parameters=[_AGENT, _ENTRY]),
    destroy=extend_schema(description="Delete one of the agent's entries (Supervisors).", parameters=[_AGENT, _ENTRY]),
)
class AgentKnowledgeViewSet(_KnowledgeViewSet):
    """/agents/{slug}/knowledge/: one agent's entries (404 for an unknown agent)."""

    def entry_agent(self) -> AgentConfig:
        if not hasattr(self, "_agent"):
            self._agent = get_object_or_404(AgentConfig, slug=self.kwargs["agent_slug"])
        return self._agent


@extend_schema_view(
    list=extend_schema(description="Knowledge entries shared with every agent."),
    create=extend_schema(description="Add an entry every agent's search_knowledge_base tool finds (Supervisors)."),
    retrieve=extend_schema(description="One shared entry.", parameters=[_ENTRY]),
    update=extend_schema(description="Replace a shared entry (Supervisors).", parameters=[_ENTRY]),
    partial_update=extend_schema(description="Change a shared entry (Supervisors).", parameters=[_ENTRY]),
    destroy=extend_schema(description="Delete a shared entry (Supervisors).", parameters=[_ENTRY]),
)
class SharedKnowledgeViewSet(_KnowledgeViewSet):
    """/knowledge/shared/: the entries of no one agent."""

    def entry_agent(self) -> None:
        return None


# The router's prefix for one agent's entries (a slug, as AgentConfig.slug allows).
AGENT_KNOWLEDGE_PREFIX = r"agents/(?P<agent_slug>[-a-zA-Z0-9_]+)/knowledge"
