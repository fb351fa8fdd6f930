"""The REST API holds roles on every path and answers bad input with a 4xx (docs/security.md, "The REST API")."""

import datetime as dt
import importlib
import json
import os
import secrets
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from calls.models import Call
from customers.models import Customer
from customers.tests.factories import CustomerFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture(autouse=True)
def fresh_throttle_counts(settings):
    """A cache of this test's own, so request counts from other tests (or a shared Redis) do not leak in."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"api-security-{secrets.token_hex(4)}"}}


# --- Writable fields per role ------------------------------------------------------------------------


def test_an_agent_cannot_set_the_balance_or_the_account_number(bob):
    customer = CustomerFactory(balance=Decimal("10.00"))
    number = customer.account_number
    response = api_as(bob).patch(f"/api/customers/{customer.pk}/", {"balance": "-500.00", "account_number": "12345"},
                                 format="json")
    assert response.status_code == 403
    assert set(response.json()) == {"balance", "account_number"}
    customer.refresh_from_db()
    assert (customer.balance, customer.account_number) == (Decimal("10.00"), number)


def test_an_agent_cannot_create_a_customer_with_a_balance(bob):
    response = api_as(bob).post("/api/customers/", {"first_name": "Eve", "balance": "-100"}, format="json")
    assert response.status_code == 403 and list(response.json()) == ["balance"]
    assert not Customer.objects.exists()


def test_an_agent_edits_contact_fields_and_notes(bob):
    customer = CustomerFactory()
    response = api_as(bob).patch(f"/api/customers/{customer.pk}/", {
        "phone": "(415) 555-0123", "email": "new@example.com", "notes": "Prefers mornings.",
    }, format="json")
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert (customer.phone, customer.notes) == ("+14155550123", "Prefers mornings.")
    created = api_as(bob).post("/api/customers/", {"first_name": "Eve", "phone": "+14155550199"}, format="json")
    assert created.status_code == 201 and len(created.json()["account_number"]) == 8


@pytest.mark.parametrize("actor", ["sam", "alice"])
def test_a_supervisor_changes_money_and_identifiers(actor, request):
    customer = CustomerFactory()
    response = api_as(request.getfixturevalue(actor)).patch(
        f"/api/customers/{customer.pk}/", {"balance": "42.50", "account_number": "7654321", "plan": "premium"},
        format="json",
    )
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert (customer.balance, customer.account_number, customer.plan) == (Decimal("42.50"), "7654321", "premium")


def test_a_viewer_changes_nothing(charlie):
    customer = CustomerFactory(notes="")
    assert api_as(charlie).patch(f"/api/customers/{customer.pk}/", {"notes": "x"}, format="json").status_code == 403
    customer.refresh_from_db()
    assert customer.notes == ""


def test_unknown_fields_are_refused_naming_them(sam, bob):
    response = api_as(sam).post("/api/customers/", {"first_name": "Eve", "nickname": "E", "date_of_birth": "1990-01-01"},
                                format="json")
    assert response.status_code == 400
    assert response.json() == {"date_of_birth": ["Unknown field."], "nickname": ["Unknown field."]}
    assert not Customer.objects.exists()
    response = api_as(bob).post("/api/tickets/", {"subject": "Outage", "sla_policy": 1}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["sla_policy"]
    assert not Ticket.objects.exists()


def test_read_only_fields_sent_back_are_ignored(sam):
    customer = CustomerFactory()
    body = api_as(sam).get(f"/api/customers/{customer.pk}/").json()
    response = api_as(sam).put(f"/api/customers/{customer.pk}/", {**body, "notes": "Called back."}, format="json")
    assert response.status_code == 200, response.content
    assert Customer.objects.get(pk=customer.pk).notes == "Called back."


# --- Tokens: hashed, expiring, from a login endpoint ------------------------------------------------


def login(client, username: str, password: str, **extra):
    return client.post("/api/auth/login/", {"username": username, "password": password}, format="json", **extra)


def test_login_gives_an_expiring_token_of_which_only_a_digest_is_stored(bob, settings):
    response = login(APIClient(), "bob", "bob-password-123")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    stored = AuthToken.objects.get(user=bob)
    assert token not in (stored.digest, stored.token_key) and len(token) == 64
    expected_expiry = timezone.now() + settings.REST_KNOX["TOKEN_TTL"]
    assert abs(stored.expiry - expected_expiry) < dt.timedelta(minutes=1)
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert with_token.get("/api/customers/").status_code == 200
    assert with_token.post("/api/auth/logout/").status_code == 204
    assert with_token.get("/api/customers/").status_code == 401


def test_a_wrong_password_gets_no_token(bob):
    response = login(APIClient(), "bob", "not-the-password")
    assert response.status_code == 400 and not AuthToken.objects.exists()


def test_an_expired_token_is_refused(bob):
    client = api_as(bob)
    AuthToken.objects.filter(user=bob).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert client.get("/api/customers/").status_code == 401
    assert not AuthToken.objects.exists()


def test_existing_plaintext_tokens_become_digests_that_keep_working(bob):
    old = Token.objects.create(user=bob)
    migration = importlib.import_module("voicecrm.migrations.0002_api_tokens_hashed")
    migration.api_tokens_hash(django_apps, None)
    assert not Token.objects.exists()
    stored = AuthToken.objects.get(user=bob)
    assert old.key != stored.digest and stored.expiry > timezone.now()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old.key}")
    assert client.get("/api/customers/").status_code == 200


# --- Throttling ---------------------------------------------------------------------------------------


def test_token_login_is_throttled_per_client_address(bob, settings):
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_login"].split("/")[0])
    client = APIClient()
    for attempt in range(allowed):
        # A new X-Forwarded-For each time does not make a new client: the count is by REMOTE_ADDR.
        assert login(client, "bob", f"guess-{attempt}", HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}").status_code == 400
    refused = login(client, "bob", "bob-password-123", HTTP_X_FORWARDED_FOR="10.0.1.1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert not AuthToken.objects.exists()
    assert login(client, "bob", "bob-password-123", REMOTE_ADDR="192.0.2.7").status_code == 200


def test_a_user_is_throttled_at_the_user_rate(bob, monkeypatch):
    # The configured rate is in the hundreds per minute; the same check, at a rate a test can reach.
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "3/minute")
    client = api_as(bob)
    assert [client.get("/api/customers/").status_code for _ in range(4)] == [200, 200, 200, 429]


# --- Bad input is a 4xx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url, parameter", [
    ("/api/calls/?customer=abc", "customer"),
    ("/api/calls/?customer=1.5", "customer"),
    ("/api/calls/?customer=99999999999999999999999", "customer"),
    ("/api/calls/?status=%00", "status"),
    ("/api/calls/?status=nonsense", "status"),
    ("/api/calls/?channel=%00", "channel"),
    ("/api/calls/?intent=%00", "intent"),
    ("/api/customers/?phone=xyz", "phone"),
    ("/api/customers/?phone=%00", "phone"),
    ("/api/customers/?account_number=%00", "account_number"),
])
def test_a_bad_query_parameter_is_a_400_naming_it(charlie, url, parameter):
    response = api_as(charlie).get(url)
    assert response.status_code == 400 and parameter in response.json()


def test_good_query_parameters_still_filter(charlie):
    customer = CustomerFactory(phone="+14155550123")
    CustomerFactory(phone="+14155550124")
    call = Call.objects.create(channel="browser", status="completed", customer=customer, intent="billing")
    Call.objects.create(channel="browser", status="failed")
    client = api_as(charlie)
    assert [c["id"] for c in client.get("/api/customers/", {"phone": "(415) 555-0123"}).json()["results"]] == [customer.pk]
    for params in ({"customer": customer.pk}, {"status": "completed"}, {"intent": "billing"}):
        assert [c["id"] for c in client.get("/api/calls/", params).json()["results"]] == [str(call.public_id)]


def test_a_deeply_nested_json_body_is_a_400(sam):
    body = "[" * 5000 + "]" * 5000
    response = api_as(sam).generic("POST", "/api/customers/", body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


@pytest.mark.parametrize("content_type, body", [
    ("application/json", json.dumps({"first_name": "Eve", "notes": "a" * 4096})),
    ("application/x-www-form-urlencoded", "first_name=Eve&notes=" + "a" * 4096),
])
def test_an_oversized_body_is_a_413_in_json(sam, settings, content_type, body):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = api_as(sam).generic("POST", "/api/customers/", body, content_type=content_type)
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert "larger than the server accepts" in response.json()["detail"]
    assert not Customer.objects.exists()


# --- Production: JSON only, tokens only -------------------------------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process that sees only `env`: settings are read once, at start-up."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "crm.example.com",
    "DATABASE_URL": "postgres://voicecrm@db.example.com:5432/voicecrm",
}

BROWSER_REQUEST = """
import json
from django.test import Client
from rest_framework.settings import api_settings
response = Client().get("/api/", secure=True, headers={"host": "crm.example.com", "accept": "text/html,*/*;q=0.8"})
print(json.dumps({"status": response.status_code, "type": response["Content-Type"],
                  "auth": [c.__name__ for c in api_settings.DEFAULT_AUTHENTICATION_CLASSES]}))
"""


@pytest.mark.parametrize("debug, content_type, auth", [
    ("0", "application/json", ["TokenAuthentication", "JWTAuthentication"]),
    ("1", "text/html; charset=utf-8", ["TokenAuthentication", "JWTAuthentication", "SessionAuthentication"]),
])
def test_the_browsable_api_and_sessions_exist_only_in_development(debug, content_type, auth):
    result = manage("shell", "-c", BROWSER_REQUEST, **{**PRODUCTION, "DEBUG": debug})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"status": 401, "type": content_type, "auth": auth}


def test_a_bad_throttle_rate_fails_at_start_up():
    result = manage("check", **PRODUCTION, API_THROTTLE_LOGIN="five a minute")
    assert result.returncode != 0 and "API_THROTTLE_LOGIN='five a minute' is not a rate" in result.stderr
