"""The conversation runner, `manage.py test_conversations`, and the admin export of a call."""

import io

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from agents.tests.factories import AgentConfigFactory, CustomerFactory
from calls.models import Call
from customers.models import Customer
from telephony.chat.conversations import (
    conversation_from_call,
    conversations_in,
    run_conversation,
)
from telephony.chat.session import text_session_open

pytestmark = pytest.mark.django_db

PASSING = """
name: greeting and a person
agent: support
turns:
  - agent: {says: Northwind}
  - caller: get me a human
    expect: {action: transfer, tools: [transfer_to_human]}
"""
FAILING = """
name: wrong expectation
agent: support
setup:
  customers: [{account_number: "65001", first_name: Temp}]
turns:
  - caller: what's my balance
    expect: {says: "your balance is a million", intent: goodbye}
expect:
  tickets_count: 3
"""


def test_the_runner_reports_failures_and_rolls_back(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(PASSING + "\n---\n" + FAILING)
    (passing_source, passing), (_, failing) = conversations_in(path)
    assert passing_source.endswith("two.yaml#1")
    assert run_conversation(passing).passed
    result = run_conversation(failing)
    assert not result.passed and result.failures == [
        "turn 1: reply should contain 'your balance is a million'",
        "turn 1: intent should be 'goodbye', was 'billing_balance'",
        "tickets: expected 3 rows, found 0",
    ]
    assert not Customer.objects.filter(account_number="65001").exists()
    assert not Call.objects.exists()


def test_manage_py_test_conversations_prints_a_table_and_fails_on_failures(tmp_path):
    (tmp_path / "ok.yaml").write_text(PASSING)
    out = io.StringIO()
    call_command("test_conversations", str(tmp_path), stdout=out)
    assert "greeting and a person" in out.getvalue() and "1 passed, 0 failed" in out.getvalue()
    (tmp_path / "bad.yaml").write_text(FAILING)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("test_conversations", str(tmp_path), "-v", "2", stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "FAIL" in text and "1 passed, 1 failed" in text and "caller: what's my balance" in text


def test_manage_py_test_conversations_runs_a_scenario_pack():
    out = io.StringIO()
    call_command("test_conversations", "--scenario", "leads", stdout=out)
    assert "leads / " in out.getvalue() and " 0 failed" in out.getvalue()
    with pytest.raises(CommandError, match="no scenario pack 'nope'"):
        call_command("test_conversations", "--scenario", "nope", stdout=io.StringIO())


def test_a_file_that_is_not_a_conversation_is_an_error(tmp_path):
    from django.core.management.base import CommandError

    (tmp_path / "bad.yaml").write_text("just: a mapping\n")
    with pytest.raises(CommandError, match="needs \"turns\""):
        call_command("test_conversations", str(tmp_path / "bad.yaml"), stdout=io.StringIO())


def record_a_call():
    AgentConfigFactory(slug="support", greeting="Hi, support here.")
    CustomerFactory(account_number="66001", first_name="Ada", date_of_birth="1985-05-05", balance="12.00", phone="+14155550166")
    session = text_session_open(agent_slug="support", caller_number="+14155550166")
    session.start()
    session.respond(text="what's my balance")
    session.respond(text="5th of May 1985")
    session.respond(text="no thanks")
    return Call.objects.get(pk=session.call_id)


def test_a_recorded_call_becomes_a_passing_regression_test():
    call = record_a_call()
    conversation = conversation_from_call(call)
    assert conversation["agent"] == "support" and conversation["caller_number"] == "+14155550166"
    assert conversation["setup"]["customers"][0]["account_number"] == "66001"
    turns = conversation["turns"]
    # A caller ID match identifies the caller but is not said: the greeting is the plain one.
    assert turns[0] == {"agent": {"similar": "Hi, support here."}}
    assert turns[2]["caller"] == "5th of May 1985"
    assert set(turns[2]["expect"]["tools"]) == {"verify_customer", "get_account_summary"} and "$12" in turns[2]["expect"]["similar"]
    # Replayed against a fresh copy of the data, it passes.
    Call.objects.all().delete()
    Customer.objects.all().delete()
    result = run_conversation(yaml.safe_load(yaml.safe_dump(conversation)))
    assert result.passed, result.failures


def test_the_admin_action_downloads_yaml(client, alice):
    call = record_a_call()
    client.force_login(alice)
    response = client.post(reverse("admin:calls_call_changelist"), {
        "action": "make_regression_test", "_selected_action": [call.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-yaml")
    assert f'filename="call-{str(call.public_id)[:8]}.yaml"' in response["Content-Disposition"]
    documents = list(yaml.safe_load_all(response.content.decode()))
    assert documents[0]["turns"][1]["caller"] == "what's my balance"
