from django.apps import AppConfig
from django.db.models.signals import post_save

from tickets.signals import ticket_created


class CallsConfig(AppConfig):
    name = "calls"

    def ready(self) -> None:
        # Imported once the app registry is ready: the receivers' modules import models.
        from calls.postcall import signals  # noqa: PLC0415

        ticket_created.connect(signals.ticket_created_webhook, dispatch_uid="calls.ticket_created_webhook")
        post_save.connect(signals.agent_config_saved, sender="agents.AgentConfig",
                          dispatch_uid="calls.agent_phrases_presynthesize")
