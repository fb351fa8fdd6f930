"""How this process hands work to Celery: whether there is a worker at all, and how hard to try."""

from __future__ import annotations

from celery import current_app

# A publish must not hang the caller (a request, a voice session) while the broker is down: retry
# briefly; a task that still cannot be published is picked up by the outbox sweeps instead.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def celery_is_eager() -> bool:
    """Celery runs tasks in-process (no REDIS_URL): there is no worker to send anything to."""
    return bool(current_app.conf.task_always_eager)
