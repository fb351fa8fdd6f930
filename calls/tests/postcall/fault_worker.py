"""`celery -A calls.tests.postcall.fault_worker worker`: the product's Celery app with the fault
points of faults.py set in each worker process, for the reliability tests. Production code has none."""

from celery.signals import worker_process_init

from calls.tests.postcall import faults
from voicecrm.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _set_fault_points(**kwargs) -> None:
    faults.install()
