"""Fault points for the reliability tests, set only in the test worker (fault_worker.py).

A test arms a point by creating `<VOICECRM_FAULT_DIR>/<name>.arm`. The first worker to reach the
point renames it to `<name>.fired` (atomic, so it fires once), writes its pid there and sleeps,
which gives the test a moment to SIGKILL exactly that process mid-task.
"""

import functools
import os
import time
from pathlib import Path


def fault_point(name: str, *, hold_seconds: float = 60.0) -> None:
    directory = os.environ.get("VOICECRM_FAULT_DIR")
    if not directory:
        return
    armed, fired = Path(directory) / f"{name}.arm", Path(directory) / f"{name}.fired"
    try:
        os.rename(armed, fired)
    except OSError:
        return  # not armed, or another process fired it
    fired.write_text(str(os.getpid()))
    time.sleep(hold_seconds)


def after(module, name: str, point: str) -> None:
    """Make `module.name` reach fault point `point` once it has returned."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        fault_point(point)
        return result

    setattr(module, name, wrapped)


def install() -> None:
    from calls.postcall import act

    # The ticket is committed, the act stage's task not yet acknowledged.
    after(act, "_ticket_action", "act.after_ticket")
