"""The REST API fuzzed against its own OpenAPI schema (schemathesis, in-process over WSGI).

Every operation of /api/schema/ is called with generated requests, valid and invalid, as a
Supervisor (every permission, so every code path behind the role checks runs) on the demo
database (`seed_demo`). Checks: no 5xx, every status code is one the operation documents, every
response body matches its documented schema, and no value reached the database that validation
should have refused (errors.py answers those with a 400, but logs them). Deterministic: a fixed seed, derandomized
generation, a bounded number of examples per operation. Each request runs in a savepoint that
is rolled back, so every one sees the same seeded data and sign-outs revoke nothing for the next.
"""

import json
import logging
import secrets

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck, Phase, settings
from knox.models import AuthToken
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from voicecrm.demo.seed import seed_demo

pytestmark = pytest.mark.django_db

# Examples per operation (plus schemathesis' boundary and schema-example cases): the whole run
# takes a few minutes on two cores.
MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict({
    "seed": 20261201,
    "generation": {"deterministic": True},
    # Links between operations are not declared in the schema; each operation is fuzzed alone.
    "phases": {"stateful": {"enabled": False}},
})


def served_schema() -> schemathesis.BaseSchema:
    """/api/schema/ as its view renders it (made here at collection, when the database is closed; it
    reads none), bound to the project's WSGI application, which serves every request in-process."""
    document = SpectacularAPIView().generator_class().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)), config=CONFIG)
    loaded.app = WSGIHandler()
    return loaded


schema = served_schema()


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker):
    """The demo data, made once for every operation's test, in a transaction rolled back at the end
    (each test's own transaction is a savepoint inside it)."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed_demo()
        yield
        transaction.set_rollback(True)


@pytest.fixture
def fuzzing(demo_data, settings, monkeypatch):
    # Django closes the database connection when a request ends; here the requests run inside the
    # test's transaction, so it must stay open (Django's own test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"api-fuzz-{secrets.token_hex(4)}"}}
    # The fuzzer is one client sending thousands of requests: the throttles are tested elsewhere.
    for scope in ("anon", "user", "api_login", "api_refresh"):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000/minute")
    # A value only the database refused is answered with a 400 (errors.py), but it means the
    # validation let it through: here that fails the test.
    refused = DatabaseRefusals()
    logging.getLogger("voicecrm.api.errors").addHandler(refused)
    yield refused
    logging.getLogger("voicecrm.api.errors").removeHandler(refused)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


class DatabaseRefusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
def test_the_api_answers_as_its_schema_says(case, fuzzing, sam):
    refused_before = len(fuzzing.messages)
    with transaction.atomic():
        token = AuthToken.objects.create(user=sam)[1]
        response = case.call(headers={"Authorization": f"Token {token}"})
        transaction.set_rollback(True)
    case.validate_response(response, checks=CHECKS)
    assert fuzzing.messages[refused_before:] == []


def test_the_fuzzed_schema_is_the_one_served(client):
    # Not slow: the guard that the operations above are those /api/schema/ serves, all of them.
    served = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    assert served.json() == schema.raw_schema
    assert len(list(schema.get_all_operations())) >= 60
