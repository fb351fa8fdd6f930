"""Celery entry points of the post-call pipeline, webhooks and phrase pre-synthesis.

Thin by design: each fetches by id, calls one service and owns its retries. All of them
acknowledge late and are re-queued if their worker dies (settings: CELERY_TASK_ACKS_LATE,
CELERY_TASK_REJECT_ON_WORKER_LOST); the services make a second run harmless. Their state
lives in the database (AnalysisStage, WebhookDelivery), so none stores a Celery result.
"""

from __future__ import annotations

import logging
import random
import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError

from calls.postcall.phrases import agent_phrases_presynthesize
from calls.postcall.pipeline import (
    StageRetry,
    analysis_stage_execute,
    analysis_stage_fail,
    postcall_sweep,
    stage_enqueue,
    stage_time_limit,
)
from calls.sweeps import call_sweep_lost
from calls.webhooks import webhook_delivery_attempt, webhook_sweep

logger = logging.getLogger(__name__)

STAGE_MAX_RETRIES = 5


def _backoff(retries: int) -> float:
    """5 s, 10 s, 20 s… at most 5 minutes, with jitter so retries of many calls spread out."""
    return min(5 * 2 ** retries, 300) * random.uniform(0.5, 1.0)


def _run_stage(task, run_id: int, name: str) -> str | None:
    task_id = task.request.id or f"local-{uuid.uuid4()}"
    try:
        next_stage = analysis_stage_execute(run_id=run_id, name=name, task_id=task_id)
    except StageRetry as exc:
        if task.request.retries >= task.max_retries:
            next_stage = analysis_stage_fail(run_id=run_id, name=name,
                                             error=f"{exc.message} (still failing after {task.max_retries} retries)")
        else:
            logger.info("stage %s of run %s will retry: %s", name, run_id, exc.message)
            raise task.retry(countdown=_backoff(task.request.retries), exc=exc) from exc
    if next_stage:
        # If the broker is away right now this raises; the sweep re-sends the stage later.
        stage_enqueue(run_id=run_id, name=next_stage)
    return next_stage


def _stage_options(name: str) -> dict:
    # Queues come from CELERY_TASK_ROUTES (settings): stt for transcription, postcall for analysis.
    limit = stage_time_limit(name)
    return {
        "bind": True, "acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
        "max_retries": STAGE_MAX_RETRIES, "soft_time_limit": limit - 60, "time_limit": limit,
    }


@shared_task(**_stage_options("transcribe"))
def call_transcribe_task(self, run_id: int):
    return _run_stage(self, run_id, "transcribe")


@shared_task(**_stage_options("summarize"))
def call_summarize_task(self, run_id: int):
    return _run_stage(self, run_id, "summarize")


@shared_task(**_stage_options("extract"))
def call_extract_task(self, run_id: int):
    return _run_stage(self, run_id, "extract")


@shared_task(**_stage_options("act"))
def call_act_task(self, run_id: int):
    return _run_stage(self, run_id, "act")


@shared_task(**_stage_options("notify"))
def call_notify_task(self, run_id: int):
    return _run_stage(self, run_id, "notify")


@shared_task(**_stage_options("analytics"))
def call_analytics_task(self, run_id: int):
    return _run_stage(self, run_id, "analytics")


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=90, time_limit=120,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, retry_jitter=True, max_retries=5)
def webhook_deliver_task(delivery_id: int):
    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=120, time_limit=150)
def postcall_sweep_task():
    return postcall_sweep()


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=120, time_limit=150)
def webhook_sweep_task():
    return webhook_sweep()


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=120, time_limit=150)
def call_sweep_lost_task():
    return call_sweep_lost()


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=5, retry_jitter=True, max_retries=3)
def agent_phrases_presynthesize_task(agent_id: int, version: int | None = None):
    return agent_phrases_presynthesize(agent_id=agent_id, version=version)
