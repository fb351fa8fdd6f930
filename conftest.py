"""Project-wide fixtures: the test database server and the named actors.

The whole run uses one database server, chosen before the test database is created:
- DATABASE_URL set (CI, `.ci/run`): that server, as configured.
- DATABASE_URL unset (a fresh checkout): a private, throwaway PostgreSQL started here from the
  installed binaries. Django creates one test database per alias for the whole session, and some
  tests need PostgreSQL (a Celery worker process writing beside this one, row locks) or a database
  another process can open (the browser tests' live server), so the whole run moves to it rather
  than a second alias the product code would never use. With fsync off it costs little: the
  fast tests took 119 s on it against 111 s on in-memory SQLite, on the engine CI and production use.
Redis is not chosen here: the tests that need one start their own (they stop it on purpose).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connections

from core.roles import roles_sync


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bindir() -> Path:
    """Where initdb and postgres are: on PATH, or where Debian's postgresql package puts them."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL is not installed: run `make system-deps`, or set DATABASE_URL to a server")


class PostgresServer:
    """A private PostgreSQL in a temporary directory, on a free port of 127.0.0.1, trust auth.

    initdb and postgres refuse to run as root, so as root they run as `nobody`, which then
    owns the directory."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="voicecrm-test-postgres-"))
        self.proc: subprocess.Popen | None = None
        self.user: dict = {}
        if os.geteuid() == 0:
            self.user = {"user": "nobody", "group": "nogroup", "extra_groups": []}
            shutil.chown(self.dir, "nobody", "nogroup")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/voicecrm"

    def start(self) -> None:
        data, log = self.dir / "data", self.dir / "postgres.log"
        # C.UTF-8 as Debian's own clusters use; --no-sync: a throwaway cluster need not reach the disk.
        subprocess.run(
            [self.bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, cwd=self.dir, **self.user,
        )
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.bindir / "postgres", "-D", data, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                 "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir, **self.user,
            )
        deadline = time.monotonic() + 30
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test PostgreSQL did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        with self._connect() as conn:
            conn.execute("CREATE DATABASE voicecrm")

    def _connect(self):
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               connect_timeout=1, autocommit=True)

    def _accepts(self) -> bool:
        try:
            self._connect().close()
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: does not wait for idle clients
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Point the default database at the private PostgreSQL when DATABASE_URL is unset (see above)."""
    db = settings.DATABASES["default"]
    if "DATABASE_URL" in os.environ:
        if db["ENGINE"] == "django.db.backends.sqlite3" and not db.get("TEST", {}).get("NAME"):
            # A file, not SQLite's in-memory database, so other processes (the browser tests'
            # live server) can open it.
            db.setdefault("TEST", {})["NAME"] = str(Path(tempfile.gettempdir()) / f"voicecrm-test-{os.getpid()}.sqlite3")
        yield
        return
    server = PostgresServer()
    server.start()
    try:
        db["OPTIONS"] = {}  # SQLite's options mean nothing to psycopg
        db.update(dj_database_url.parse(server.url))
        # No connection was opened yet (pytest-django blocks access until now), but drop any
        # wrapper made for the old engine.
        if connections.all(initialized_only=True):
            connections.close_all()
            del connections["default"]
        # Processes the tests start (the browser tests' live server) read the same server.
        os.environ["DATABASE_URL"] = server.url
        yield
    finally:
        os.environ.pop("DATABASE_URL", None)
        server.stop()


@pytest.fixture
def alice(django_user_model):
    """A superuser."""
    return django_user_model.objects.create_superuser("alice", "alice@example.com", "alice-password-123")


def _staff_in_group(django_user_model, username: str, group: str):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", f"{username}-password-123", is_staff=True)
    if not Group.objects.filter(name=group).exists():
        # A transactional test before this one flushed the tables, groups the migrations made included.
        roles_sync(django_apps)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def sam(django_user_model):
    """A Supervisor (not a superuser)."""
    return _staff_in_group(django_user_model, "sam", "Supervisor")


@pytest.fixture
def bob(django_user_model):
    """An Agent: edits customers, tickets and appointments; reads calls."""
    return _staff_in_group(django_user_model, "bob", "Agent")


@pytest.fixture
def charlie(django_user_model):
    """A Viewer: reads everything, changes nothing."""
    return _staff_in_group(django_user_model, "charlie", "Viewer")
