"""Signing in to the API: one login answers a token and a JWT pair; refresh rotates and revokes;
sign-out revokes what it is given; inactive users, expired, forged and revoked credentials get 401;
password guessing and refresh floods get 429 (docs/api.md, Authentication)."""

import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import jwt
import pytest
from django.conf import settings as django_settings
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from voicecrm.api.auth import RefreshToken, jwt_refresh

pytestmark = pytest.mark.django_db
LOGIN, REFRESH, LOGOUT, LOGOUT_ALL = "/api/v1/auth/login/", "/api/v1/auth/refresh/", "/api/v1/auth/logout/", "/api/v1/auth/logoutall/"


@pytest.fixture(autouse=True)
def fresh_throttle_counts(settings):
    """A cache of this test's own, so request counts from other tests (or a shared Redis) do not leak in."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"api-auth-{secrets.token_hex(4)}"}}


def login(username: str, password: str, client: APIClient | None = None, **extra):
    return (client or APIClient()).post(LOGIN, {"username": username, "password": password}, format="json", **extra)


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def refresh(raw: str):
    return APIClient().post(REFRESH, {"refresh": raw}, format="json")


# --- One login, both kinds of credential ---------------------------------------------------------------


def test_login_answers_a_token_and_a_jwt_pair_that_each_work(bob):
    response = login("bob", "bob-password-123")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"expiry", "token", "access", "refresh"}
    assert with_token(body["token"]).get("/api/v1/customers/").status_code == 200
    assert bearer(body["access"]).get("/api/v1/customers/").status_code == 200
    # The unversioned alias takes the same credentials.
    assert bearer(body["access"]).get("/api/customers/").status_code == 200
    assert AccessToken(body["access"])["user_id"] == str(bob.pk)


def test_a_jwt_carries_the_users_role(charlie):
    access = login("charlie", "charlie-password-123").json()["access"]
    assert bearer(access).get("/api/v1/customers/").status_code == 200
    assert bearer(access).post("/api/v1/customers/", {"first_name": "Eve"}, format="json").status_code == 403


def test_only_a_digest_of_a_refresh_token_is_stored(bob):
    raw = login("bob", "bob-password-123").json()["refresh"]
    stored = OutstandingToken.objects.get(user=bob)
    assert stored.token == hashlib.sha256(raw.encode()).hexdigest()
    assert not OutstandingToken.objects.filter(token__contains=raw[-20:]).exists()


def test_jwts_are_signed_with_their_own_key_not_secret_key(bob, settings):
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY and len(settings.SIMPLE_JWT["SIGNING_KEY"]) >= 32
    access = login("bob", "bob-password-123").json()["access"]
    jwt.decode(access, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(access, settings.SECRET_KEY, algorithms=["HS256"])


def test_an_access_token_lasts_minutes(bob, settings):
    claims = AccessToken(login("bob", "bob-password-123").json()["access"]).payload
    assert dt.timedelta(seconds=claims["exp"] - claims["iat"]) == settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] <= dt.timedelta(minutes=15)


def test_sessions_authenticate_the_api_in_development(sam):
    # DEBUG is on in tests (pytest.ini): the browsable API signs in with the admin's session.
    client = APIClient()
    client.force_login(sam)
    assert client.get("/api/v1/customers/").status_code == 200


# --- Refresh: rotation with revocation --------------------------------------------------------------------


def test_refresh_answers_a_new_pair_and_revokes_the_one_sent(bob):
    first = login("bob", "bob-password-123").json()["refresh"]
    response = refresh(first)
    assert response.status_code == 200, response.content
    pair = response.json()
    assert set(pair) == {"access", "refresh"} and pair["refresh"] != first
    assert bearer(pair["access"]).get("/api/v1/customers/").status_code == 200
    replayed = refresh(first)
    assert replayed.status_code == 401 and replayed.json() == {"detail": "The refresh token is invalid, expired or revoked."}
    assert refresh(pair["refresh"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_with_one_token_at_once_get_one_new_pair(bob):
    raw = RefreshToken.for_user(bob).__str__()
    barrier, results = threading.Barrier(2), []

    def attempt():
        barrier.wait()
        try:
            results.append(jwt_refresh(raw=raw))
        except Exception as error:  # noqa: BLE001 - the loser's refusal is the result
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    pairs = [result for result in results if isinstance(result, dict)]
    refusals = [result for result in results if not isinstance(result, dict)]
    assert len(pairs) == 1 and len(refusals) == 1 and getattr(refusals[0], "status_code", None) == 401
    assert BlacklistedToken.objects.count() == 1


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"refresh": ""}, 400),
    ({"refresh": "not-a-token"}, 401),
    ({"refresh": "a.b.c"}, 401),
])
def test_a_missing_or_broken_refresh_token_is_refused(body, status):
    response = APIClient().post(REFRESH, body, format="json")
    assert response.status_code == status
    assert ("refresh" in response.json()) if status == 400 else ("detail" in response.json())


def test_an_access_token_is_no_refresh_token(bob):
    access = login("bob", "bob-password-123").json()["access"]
    assert refresh(access).status_code == 401


def test_an_expired_refresh_token_is_refused(bob):
    token = RefreshToken.for_user(bob)
    token.set_exp(lifetime=-dt.timedelta(seconds=1))
    assert refresh(str(token)).status_code == 401


def test_a_refresh_token_of_a_deleted_user_is_refused(bob):
    raw = str(RefreshToken.for_user(bob))
    bob.delete()
    assert refresh(raw).status_code == 401


# --- 401 for credentials that no longer hold ---------------------------------------------------------------


def test_an_inactive_user_gets_401_with_every_credential_and_no_new_ones(bob):
    body = login("bob", "bob-password-123").json()
    bob.is_active = False
    bob.save()
    for client in (with_token(body["token"]), bearer(body["access"])):
        response = client.get("/api/v1/customers/")
        assert response.status_code == 401 and set(response.json()) == {"detail"}
    assert refresh(body["refresh"]).status_code == 401
    assert login("bob", "bob-password-123").status_code == 400


def test_a_changed_password_ends_the_jwts_issued_before(bob):
    body = login("bob", "bob-password-123").json()
    bob.set_password("a-new-password-456")
    bob.save()
    assert bearer(body["access"]).get("/api/v1/customers/").status_code == 401
    assert refresh(body["refresh"]).status_code == 401
    assert bearer(login("bob", "a-new-password-456").json()["access"]).get("/api/v1/customers/").status_code == 200


def test_an_expired_access_token_is_refused(bob):
    token = AccessToken.for_user(bob)
    token.set_exp(lifetime=-dt.timedelta(seconds=1))
    response = bearer(str(token)).get("/api/v1/customers/")
    assert response.status_code == 401
    assert response.json() == {"detail": "The access token is invalid or expired."}
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize("forge", ["secret_key", "none", "other_user"])
def test_a_forged_access_token_is_refused(bob, alice, forge):
    claims = dict(AccessToken(login("bob", "bob-password-123").json()["access"]).payload)
    if forge == "secret_key":  # the right claims, signed with SECRET_KEY instead of the JWT key
        forged = jwt.encode(claims, django_settings.SECRET_KEY, algorithm="HS256")
    elif forge == "none":
        forged = jwt.encode(claims, None, algorithm="none")
    else:  # bob's signature, alice's id
        header, payload, signature = jwt.encode(claims, django_settings.SIMPLE_JWT["SIGNING_KEY"]).split(".")
        other = jwt.utils.base64url_encode(json.dumps({**claims, "user_id": str(alice.pk)}).encode()).decode()
        forged = ".".join([header, other, signature])
    assert bearer(forged).get("/api/v1/customers/").status_code == 401


# --- Sign-out -------------------------------------------------------------------------------------------------


def test_logout_with_a_token_keeps_working_as_before(bob):
    token = login("bob", "bob-password-123").json()["token"]
    client = with_token(token)
    assert client.post(LOGOUT).status_code == 204
    assert client.get("/api/v1/customers/").status_code == 401


def test_logout_revokes_the_refresh_token_given(bob):
    body = login("bob", "bob-password-123").json()
    response = bearer(body["access"]).post(LOGOUT, {"refresh": body["refresh"]}, format="json")
    assert response.status_code == 204
    assert refresh(body["refresh"]).status_code == 401
    # The token from the same login is a separate credential: it was not sent, so it still works.
    assert with_token(body["token"]).get("/api/v1/customers/").status_code == 200


def test_logout_with_a_token_and_a_refresh_token_revokes_both(bob):
    body = login("bob", "bob-password-123").json()
    assert with_token(body["token"]).post(LOGOUT, {"refresh": body["refresh"]}, format="json").status_code == 204
    assert with_token(body["token"]).get("/api/v1/customers/").status_code == 401
    assert refresh(body["refresh"]).status_code == 401


def test_a_refresh_token_alone_signs_out(bob):
    raw = login("bob", "bob-password-123").json()["refresh"]
    assert APIClient().post(LOGOUT, {"refresh": raw}, format="json").status_code == 204
    assert refresh(raw).status_code == 401


def test_logout_with_a_bad_refresh_token_revokes_nothing(bob):
    token = login("bob", "bob-password-123").json()["token"]
    response = with_token(token).post(LOGOUT, {"refresh": "not-a-token"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["refresh"]
    assert with_token(token).get("/api/v1/customers/").status_code == 200


def test_logout_with_nothing_to_revoke(bob):
    assert APIClient().post(LOGOUT).status_code == 401
    access = login("bob", "bob-password-123").json()["access"]
    response = bearer(access).post(LOGOUT)
    assert response.status_code == 400 and list(response.json()) == ["refresh"]


def test_logoutall_revokes_every_token_and_refresh_token(bob, charlie):
    sessions = [login("bob", "bob-password-123").json() for _ in range(2)]
    other = login("charlie", "charlie-password-123").json()
    assert bearer(sessions[0]["access"]).post(LOGOUT_ALL).status_code == 204
    for body in sessions:
        assert with_token(body["token"]).get("/api/v1/customers/").status_code == 401
        assert refresh(body["refresh"]).status_code == 401
    assert not AuthToken.objects.filter(user=bob).exists()
    assert with_token(other["token"]).get("/api/v1/customers/").status_code == 200
    assert refresh(other["refresh"]).status_code == 200
    assert APIClient().post(LOGOUT_ALL).status_code == 401


# --- Throttling: password guessing and refresh floods --------------------------------------------------------


def test_password_guessing_gets_429_and_no_credentials(bob, settings):
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_login"].split("/")[0])
    client = APIClient()
    for attempt in range(allowed):
        assert login("bob", f"guess-{attempt}", client).status_code == 400
    refused = login("bob", "bob-password-123", client)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert set(refused.json()) == {"detail"}
    assert not AuthToken.objects.exists() and not OutstandingToken.objects.exists()
    # Another client address is counted on its own.
    assert login("bob", "bob-password-123", REMOTE_ADDR="192.0.2.9").status_code == 200


def test_refresh_floods_get_429(bob, settings):
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_refresh"].split("/")[0])
    client = APIClient()
    for _ in range(allowed):
        assert client.post(REFRESH, {"refresh": "guess"}, format="json").status_code == 401
    good = str(RefreshToken.for_user(bob))
    refused = client.post(REFRESH, {"refresh": good}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert not BlacklistedToken.objects.exists()


def test_anonymous_requests_are_throttled_per_address(monkeypatch):
    # Where anonymous requests are served at all (sign-in, refresh, sign-out, the schema); elsewhere
    # they are refused with 401 before any work is done.
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/minute")
    client = APIClient()
    assert [client.post(LOGOUT).status_code for _ in range(4)] == [401, 401, 401, 429]
    assert client.get("/api/schema/").status_code == 429
    assert client.post(LOGOUT, REMOTE_ADDR="192.0.2.10").status_code == 401


def test_a_jwt_user_is_throttled_at_the_user_rate(bob, monkeypatch):
    access = login("bob", "bob-password-123").json()["access"]
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "2/minute")
    client = bearer(access)
    assert [client.get("/api/v1/customers/").status_code for _ in range(3)] == [200, 200, 429]


# --- Settings ---------------------------------------------------------------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process that sees only `env`: settings are read once, at start-up."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=Path(__file__).resolve().parents[2],
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "crm.example.com",
              "DATABASE_URL": "postgres://voicecrm@db.example.com:5432/voicecrm"}
SIGNING_KEY = "from django.conf import settings; print(settings.SIMPLE_JWT['SIGNING_KEY'])"


def test_the_jwt_signing_key_is_its_own_setting_or_derived_from_secret_key():
    derived = manage("shell", "-c", SIGNING_KEY, **PRODUCTION)
    assert derived.returncode == 0, derived.stderr
    key = derived.stdout.strip().splitlines()[-1]
    assert len(key) == 64 and key != PRODUCTION["SECRET_KEY"]
    # Derived from SECRET_KEY: a new SECRET_KEY is a new signing key.
    other = manage("shell", "-c", SIGNING_KEY, **{**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(64)})
    assert other.stdout.strip().splitlines()[-1] != key
    own = secrets.token_urlsafe(48)
    configured = manage("shell", "-c", SIGNING_KEY, **PRODUCTION, API_JWT_SIGNING_KEY=own)
    assert configured.stdout.strip().splitlines()[-1] == own


def test_a_short_jwt_signing_key_fails_at_start_up():
    result = manage("check", **PRODUCTION, API_JWT_SIGNING_KEY="too-short")
    assert result.returncode != 0 and "API_JWT_SIGNING_KEY is too short" in result.stderr
