"""Receivers connected in CallsConfig.ready(): they only queue work, the services decide.

Tickets come from several places (the agent's tool during a call, the post-call rules, the
admin, the API), all through `tickets.services.ticket_create`, which sends `ticket_created`
inside the transaction that wrote the ticket; ticket.created is emitted from there. A saved
AgentConfig gets its fixed phrases synthesized on the `tts` queue after commit.
"""

import logging

from django.db import transaction

from agents.models import AgentConfig
from calls.tasks import agent_phrases_presynthesize_task
from calls.webhooks import ticket_created_emit
from core.queues import PUBLISH_RETRY, celery_is_eager

logger = logging.getLogger(__name__)


def ticket_created_webhook(sender, ticket, **kwargs) -> None:
    ticket_created_emit(ticket=ticket)


def agent_config_saved(sender, instance, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    agent_id = instance.pk
    transaction.on_commit(lambda: agent_phrases_presynthesize_enqueue(agent_id=agent_id))


def agent_phrases_presynthesize_enqueue(*, agent_id: int) -> None:
    # The saved version, read after commit: save() bumps it with an F() expression.
    version = AgentConfig.objects.filter(pk=agent_id).values_list("version", flat=True).first()

    if celery_is_eager():
        # Embedded mode has no tts worker: synthesizing here would hold up the admin's save
        # for seconds, and the phrase cache fills on first use anyway.
        return
    try:
        agent_phrases_presynthesize_task.apply_async((agent_id, version), retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # a cold phrase is synthesized on first use; never fail the save for it
        logger.warning("could not queue phrase pre-synthesis for agent %s: %s", agent_id, exc)
