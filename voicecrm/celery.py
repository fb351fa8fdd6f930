import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")

app = Celery("voicecrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One queue per workload so a long transcription never delays a webhook:
# default (webhooks, sweeps), stt (transcription), tts (synthesis), postcall (analysis).
app.conf.task_queues = [Queue(name) for name in ("default", "stt", "tts", "postcall")]
app.autodiscover_tasks()
# Speech tasks live below calls/ (not in calls/tasks.py), so name their module too.
app.autodiscover_tasks(["calls.speech"])
