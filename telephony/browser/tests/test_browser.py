"""The widget end to end: headless Chromium with a fake microphone, a real daphne server, the
real voice session with Whisper and Piper, and the rows it leaves in the database."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from agents.models import AgentConfig
from calls.models import Call, Turn
from telephony.models import Route
from voicecrm.demo.agents import DEMO_AGENTS

from . import browser
from .live import LiveDaphne

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "browser-test"
ORDER_QUESTION = "I want to check the status of my order."


@pytest.fixture(scope="module")
def daphne_url(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_name = connection.settings_dict["NAME"]
    server = LiveDaphne(host="localhost", database_name=database_name)
    server.start()
    try:
        port = server.wait_ready()
        yield f"http://localhost:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def calls_settled(transactional_db):
    """After each test (its browser closed first), wait until the server has finalized every call,
    so none of their writes races the database flush that ends the test."""
    yield
    wait_db(lambda: not Call.objects.filter(status=Call.Status.IN_PROGRESS).exists(), timeout=30,
            what="the server to finalize the test's calls")
    # ...and until its after-commit work (webhooks, the post-call dispatch) has stopped querying:
    # a query over two tables running into the flush's TRUNCATE deadlocks with it.
    wait_db(lambda: _others_quiet() and (time.sleep(0.3) or _others_quiet()), timeout=30,
            what="the server's queries to end")


def _others_quiet() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND state <> 'idle'")
        return cursor.fetchone()[0] == 0


@pytest.fixture
def support_agent(transactional_db, daphne_url):
    spec = next(spec for spec in DEMO_AGENTS if spec["slug"] == "support")
    agent = AgentConfig.objects.create(**spec)
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address=KEY, agent=agent, allowed_origins=daphne_url)
    return agent


@pytest.fixture
def driver_factory():
    drivers = []

    def make(**kwargs):
        driver = browser.chromium(**kwargs)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()


def wait_db(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def finished_call(call_id: str) -> Call:
    return wait_db(lambda: Call.objects.filter(public_id=call_id, ended_at__isnull=False).first(),
                   timeout=30, what="the call to be finalized")


def test_a_spoken_call_from_greeting_to_the_stored_intent(support_agent, daphne_url, driver_factory, tmp_path):
    # The caller waits out the greeting, asks one question, then stays quiet.
    lead = browser.speech_seconds(support_agent.greeting) + 2.5
    mic = browser.caller_wav(tmp_path / "caller.wav", [lead, ORDER_QUESTION, 1.0])
    driver = driver_factory(microphone=mic)
    driver.get(f"{daphne_url}/widget/demo/?key={KEY}")
    browser.shadow(driver, ".launcher").click()

    state = browser.wait_for(driver, lambda s: s["callId"] and s, timeout=15, what="ready")
    call_id = state["callId"]
    # Live: the Call row exists while the call is going on.
    assert Call.objects.get(public_id=call_id).status == Call.Status.IN_PROGRESS
    browser.wait_for(driver, lambda s: browser.captions(s, "agent"), timeout=20, what="the greeting caption")
    heard = browser.wait_for(driver, lambda s: browser.captions(s, "caller"), timeout=lead + 15,
                             what="the caller's words, transcribed")
    assert "order" in heard[0].lower()
    state = browser.wait_for(driver, lambda s: len(browser.captions(s, "agent")) >= 2 and s["stats"]["latencies"] and s,
                             timeout=20, what="the agent's answer, played")
    browser.screenshot(driver, "widget-continuous.png")
    stats = state["stats"]
    assert stats["audioBytesIn"] > 0 and stats["playedMs"] > 1000, stats
    assert stats["micError"] is None and stats["framesSent"] > 100
    client_ms = stats["latencies"][0]["ms"]

    browser.shadow(driver, ".hangup").click()
    browser.wait_for(driver, lambda s: s["state"] == "ended", timeout=10, what="the call to end")
    call = finished_call(call_id)
    assert call.channel == Call.Channel.BROWSER and call.agent == support_agent
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert call.intent == "order_status"
    turns = list(call.turns.order_by("index"))
    speakers = [t.speaker for t in turns]
    assert speakers[:3] == [Turn.Speaker.AGENT, Turn.Speaker.CALLER, Turn.Speaker.AGENT], turns
    assert turns[0].text == support_agent.greeting
    assert "order" in turns[1].text.lower()
    answer = turns[2]
    assert answer.voice_to_voice_ms is not None
    assert answer.client_voice_to_voice_ms == client_ms
    # The browser's figure includes the network, the jitter buffer and the audio device.
    assert answer.client_voice_to_voice_ms >= answer.voice_to_voice_ms
    print(f"voice-to-voice: server {answer.voice_to_voice_ms} ms, browser {client_ms} ms")


def test_push_to_talk_sends_only_while_held(support_agent, daphne_url, driver_factory, tmp_path):
    lead = browser.speech_seconds(support_agent.greeting) + 2.5
    question_s = browser.speech_seconds(ORDER_QUESTION)
    # The microphone also hears something before the button is held: it must not reach the agent.
    mic = browser.caller_wav(tmp_path / "caller.wav", [1.5, "Testing one two three.", lead - 1.5, ORDER_QUESTION, 1.0])
    driver = driver_factory(microphone=mic)
    driver.get(f"{daphne_url}/widget/demo/?key={KEY}&mode=ptt")
    browser.shadow(driver, ".launcher").click()
    started = time.monotonic()
    state = browser.wait_for(driver, lambda s: s["callId"] and s, timeout=15, what="ready")
    assert browser.shadow(driver, ".talk").is_displayed()
    question_at = started + 1.5 + browser.speech_seconds("Testing one two three.") + lead - 1.5
    time.sleep(max(0.0, question_at - 0.4 - time.monotonic()))
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).key_down(Keys.SPACE).perform()
    time.sleep(question_s + 0.6)
    ActionChains(driver).key_up(Keys.SPACE).perform()
    heard = browser.wait_for(driver, lambda s: browser.captions(s, "caller"), timeout=15, what="the held utterance")
    assert "order" in heard[0].lower() and "testing" not in " ".join(heard).lower()
    state = browser.wait_for(driver, lambda s: len(browser.captions(s, "agent")) >= 2 and s, timeout=20,
                             what="the agent's answer")
    browser.screenshot(driver, "widget-ptt.png")
    browser.shadow(driver, ".hangup").click()
    call = finished_call(state["callId"])
    caller_turns = list(call.turns.filter(speaker=Turn.Speaker.CALLER))
    assert len(caller_turns) == 1 and "order" in caller_turns[0].text.lower()
    assert call.intent == "order_status"


def test_a_denied_microphone_is_explained_and_typing_still_works(support_agent, daphne_url, driver_factory):
    driver = driver_factory(deny_microphone=True)
    driver.get(f"{daphne_url}/widget/demo/?key={KEY}")
    browser.shadow(driver, ".launcher").click()
    state = browser.wait_for(driver, lambda s: s["callId"] and s["alert"] and s, timeout=15, what="the denied message")
    assert "Microphone access was denied" in state["alert"]
    assert state["stats"]["micError"] == "NotAllowedError"
    browser.wait_for(driver, lambda s: browser.captions(s, "agent"), timeout=20, what="the greeting")
    box = browser.shadow(driver, ".text-input")
    box.send_keys(ORDER_QUESTION)
    browser.shadow(driver, ".text button").click()
    browser.wait_for(driver, lambda s: browser.captions(s, "caller") == [ORDER_QUESTION], timeout=10,
                     what="the typed turn")
    browser.wait_for(driver, lambda s: len(browser.captions(s, "agent")) >= 2, timeout=20, what="the answer")
    browser.screenshot(driver, "widget-mic-denied.png")
    browser.shadow(driver, ".hangup").click()
    call = finished_call(state["callId"])
    assert call.intent == "order_status"
    assert call.turns.filter(speaker=Turn.Speaker.CALLER, text=ORDER_QUESTION).exists()


def test_a_missing_microphone_is_explained(support_agent, daphne_url, driver_factory):
    driver = driver_factory(no_microphone=True)
    driver.get(f"{daphne_url}/widget/demo/?key={KEY}")
    browser.shadow(driver, ".launcher").click()
    state = browser.wait_for(driver, lambda s: s["callId"] and s["alert"] and s, timeout=15, what="the message")
    assert "No microphone was found" in state["alert"], state
    browser.shadow(driver, ".hangup").click()
    finished_call(state["callId"])


def test_a_page_on_a_foreign_origin_is_refused(support_agent, daphne_url, driver_factory):
    # The key allows http://localhost:PORT; the same page served as 127.0.0.1 is another origin.
    foreign = daphne_url.replace("localhost", "127.0.0.1")
    driver = driver_factory()
    driver.get(f"{foreign}/widget/demo/?key={KEY}")
    browser.shadow(driver, ".launcher").click()
    state = browser.wait_for(driver, lambda s: s["state"] == "error" and s, timeout=15, what="the refusal")
    assert state["stats"]["closeCode"] == 4403
    assert "not allowed" in state["alert"]
    assert state["callId"] is None
    assert not Call.objects.exists()
    browser.screenshot(driver, "widget-foreign-origin.png")


def test_an_oversized_message_ends_the_connection_in_daphne(support_agent, daphne_url, driver_factory):
    # daphne enforces WEBSOCKET_MAX_MESSAGE_BYTES before the message is buffered; autobahn fails
    # the connection by dropping it (the browser reports 1006). Behind other ASGI servers the
    # consumer's own check closes with 1009 (test_handshake).
    driver = driver_factory()
    driver.get(f"{daphne_url}/widget/demo/?key={KEY}")
    code = driver.execute_async_script("""
        const [key, done] = arguments;
        const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws/voice/' + key + '/');
        ws.onopen = () => ws.send(new Uint8Array(100000));
        ws.onclose = (event) => done(event.code);
    """, KEY)
    assert code in (1006, 1009)
    assert not Call.objects.exists()
