"""Content-Security-Policy: every staff page and the widget demo carry a strict policy, and
their markup runs no script the policy would block (inline script only with the request's nonce)."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, WebhookEndpoint
from telephony.browser.tests import browser
from telephony.browser.tests.live import LiveDaphne
from telephony.models import Route

pytestmark = pytest.mark.django_db

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def assert_strict(response) -> dict[str, list[str]]:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    scripts = directives["script-src"]
    assert scripts[0] == "'self'" and all(s.startswith("'nonce-") for s in scripts[1:]), scripts
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    return directives


def assert_page_runs_under_the_policy(response) -> None:
    """What a browser would refuse: inline script without the nonce, and inline event handlers."""
    assert response.status_code == 200
    directives = assert_strict(response)
    nonces = {s[len("'nonce-"):-1] for s in directives["script-src"] if s.startswith("'nonce-")}
    html = response.content.decode()
    for attributes, body in SCRIPT_TAG.findall(html):
        if "src=" in attributes:
            assert not body.strip(), attributes
            continue
        nonce = re.search(r'nonce="([^"]+)"', attributes)
        assert nonce and nonce.group(1) in nonces, f"inline <script{attributes}> without this response's nonce"
    assert not EVENT_HANDLER.search(html), EVENT_HANDLER.search(html).group(0)
    assert "javascript:" not in html


@pytest.fixture
def supervisor(alice) -> User:
    return alice


def test_the_dashboard(client, supervisor):
    client.force_login(supervisor)
    assert_page_runs_under_the_policy(client.get(reverse("dashboard")))


@pytest.mark.parametrize("page", ["admin:index", "admin:calls_call_changelist", "admin:calls_webhookendpoint_add",
                                  "admin:calls_webhookdelivery_changelist", "admin:customers_customer_add"])
def test_admin_pages(client, supervisor, page):
    client.force_login(supervisor)
    assert_page_runs_under_the_policy(client.get(reverse(page)))


def test_the_admin_sign_in_page(client):
    assert_page_runs_under_the_policy(client.get(reverse("admin:login")))


def test_the_call_page_with_its_recording_player(client, supervisor):
    call = Call.objects.create(channel=Call.Channel.API)
    call.recording.save("recording.wav", ContentFile(b"RIFF"))
    endpoint = WebhookEndpoint.objects.create(name="CRM", url="https://hooks.example.com/x", events=["call.ended"])
    client.force_login(supervisor)
    try:
        response = client.get(reverse("admin:calls_call_change", args=[call.pk]))
        assert "<audio" in response.content.decode()
        assert_page_runs_under_the_policy(response)
        assert_page_runs_under_the_policy(client.get(reverse("admin:calls_webhookendpoint_change", args=[endpoint.pk])))
    finally:
        call.recording.delete(save=False)


def test_the_widget_demo_page(client, supervisor):
    agent = AgentConfigFactory(name="Support", slug="support")
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="demo-key", agent=agent)
    client.force_login(supervisor)
    response = client.get(reverse("widget-demo"), {"key": "demo-key"})
    assert 'data-key="demo-key"' in response.content.decode()
    assert_page_runs_under_the_policy(response)


def test_the_staff_chat_pages(client, supervisor):
    AgentConfigFactory(name="Support", slug="support")
    client.force_login(supervisor)
    assert_page_runs_under_the_policy(client.get(reverse("agents:list")))
    response = client.get(reverse("agents:chat", args=["support"]))
    assert "chat-log" in response.content.decode()
    assert_page_runs_under_the_policy(response)


# --- in a real browser: Chromium reports no violation on these pages -----------------------------------

VIOLATIONS_JS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(
    e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));
"""


# Per test: the server stops (and its connections close) before the database is flushed.
@pytest.fixture
def daphne_url(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_name = connection.settings_dict["NAME"]
    server = LiveDaphne(host="localhost", database_name=database_name)
    server.start()
    try:
        yield f"http://localhost:{server.wait_ready()}"
    finally:
        server.stop()


def violations(driver) -> list[str]:
    reported = driver.execute_script("return window.__cspViolations || []")
    logged = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    return reported + logged


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_reports_no_violation_on_the_dashboard_admin_and_widget_demo(transactional_db, daphne_url, client):
    staff = User.objects.create_superuser("alice", "alice@example.com", "alice-password-123")
    agent = AgentConfigFactory(name="Support", slug="support")
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="csp-key", agent=agent, allowed_origins=daphne_url)
    call = Call.objects.create(channel=Call.Channel.API)
    call.recording.save("recording.wav", ContentFile(b"RIFF"))
    client.force_login(staff)  # a session in the database the server reads
    driver = browser.chromium()
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATIONS_JS})
        driver.get(daphne_url + "/admin/login/")
        assert not violations(driver), violations(driver)
        driver.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value})
        for path in ("/dashboard/", "/admin/", f"/admin/calls/call/{call.pk}/change/", "/admin/calls/webhookendpoint/add/",
                     "/agents/support/chat/"):
            driver.get(daphne_url + path)
            assert "VoiceCRM" in driver.title, (path, driver.title)
            time.sleep(0.5)  # htmx and the admin's scripts run
            assert not violations(driver), (path, violations(driver))

        # The widget: its script, its shadow-DOM stylesheet, the audio worklet and the websocket.
        driver.get(daphne_url + "/widget/demo/?key=csp-key")
        browser.shadow(driver, ".launcher").click()
        call_id = browser.wait_for(driver, lambda s: s["callId"], timeout=30, what="the widget's call to connect")
        assert not violations(driver), violations(driver)
        browser.shadow(driver, ".hangup").click()
        browser.wait_for(driver, lambda s: s["state"] == "ended", timeout=10, what="the call to end")
        assert not violations(driver), violations(driver)
        # The server stores and finalizes the call after the browser has let go: wait for it, so
        # no write of the call's races the database flush after this test.
        deadline = time.monotonic() + 30
        while not Call.objects.filter(public_id=call_id, ended_at__isnull=False).exists():
            assert time.monotonic() < deadline, "the widget call was not finalized"
            time.sleep(0.2)
    finally:
        driver.quit()
        call.recording.delete(save=False)
