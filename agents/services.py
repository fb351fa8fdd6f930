"""Writes to agents and their knowledge, with the admin's validation: the model's field validators
(flow, extraction schema, escalation rules, tool names), `AgentConfig.clean()` (tools that need a
verified caller) and unique slugs, so the REST API refuses what the admin refuses. Every save of
an agent is a new version (AgentConfig.version), and django-auditlog keeps what changed."""

from typing import Any

from django.db import transaction

from agents.models import AgentConfig, KnowledgeEntry


class AgentInUse(Exception):
    """The agent still answers phone numbers or widget keys: deleting it would delete them too."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def agent_create(**fields: Any) -> AgentConfig:
    """A new agent at version 1; ValidationError names each bad field."""
    agent = AgentConfig(**fields)
    agent.full_clean()
    agent.save()
    return agent


@transaction.atomic
def agent_update(*, agent: AgentConfig, **changes: Any) -> AgentConfig:
    """Change fields and save as the next version; ValidationError (nothing saved) names each bad field."""
    for name, value in changes.items():
        setattr(agent, name, value)
    agent.full_clean()
    agent.save()
    return agent


def agent_delete(*, agent: AgentConfig) -> None:
    """Delete an agent that no route points at (its calls keep their record, without the agent)."""
    routes = list(agent.routes.values_list("address", flat=True)[:5])
    if routes:
        raise AgentInUse(f"{agent.slug} still answers {', '.join(routes)}: remove those routes first, "
                         "or set active to false.")
    agent.delete()


def knowledge_entry_create(**fields: Any) -> KnowledgeEntry:
    """A knowledge entry for an agent, or shared with every agent (agent=None)."""
    entry = KnowledgeEntry(**fields)
    entry.full_clean()
    entry.save()
    return entry


def knowledge_entry_update(*, entry: KnowledgeEntry, **changes: Any) -> KnowledgeEntry:
    for name, value in changes.items():
        setattr(entry, name, value)
    entry.full_clean()
    entry.save()
    return entry
