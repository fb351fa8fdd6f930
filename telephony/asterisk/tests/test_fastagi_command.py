"""`manage.py run_fastagi` as an operator runs it: its own process on the test database, serving
Asterisk's AGI() until SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from calls.models import Call
from telephony.asterisk.tests.fastagi_live import *  # noqa: F403 - the fixtures
from telephony.asterisk.tests.pbx import FakeChannel, agi_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]


def test_run_fastagi_serves_the_dialplan_until_sigterm(extension):
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "CELERY_BROKER_URL": "memory://",
           "CELERY_TASK_ALWAYS_EAGER": "0", "FASTAGI_ALLOWED_NETWORKS": "127.0.0.1/32"}
    process = subprocess.Popen([sys.executable, "manage.py", "run_fastagi", "--bind", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    watchdog = threading.Timer(90, process.kill)  # a hung process fails the test instead of hanging it
    watchdog.start()
    try:
        while not seen or "listening on" not in seen[-1]:
            seen.append(process.stdout.readline())
            assert seen[-1], f"run_fastagi exited before listening: {''.join(seen)}"
        port = int(re.search(r":(\d+)$", seen[-1].strip())[1])

        channel = FakeChannel(port).run(agi_environment(port=port, uniqueid="1733032000.5"))

        assert channel.variables["VOICECRM_ROUTE"] == "ok"
        assert Call.objects.get(provider_call_id="1733032000.5").to_number == "7000"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "'step_route': 1" in output
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            print("run_fastagi said:", "".join(seen), process.communicate()[0])  # shown when the test fails
