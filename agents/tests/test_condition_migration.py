"""The data migration that moves stored flows and escalation rules to the one condition language."""

import importlib

import pytest
from django.core.exceptions import ValidationError

from agents.flows import DEFAULT_FLOWS
from agents.models import AgentConfig
from agents.tests.factories import AgentConfigFactory
from agents.validators import validate_rule_list

migration = importlib.import_module("agents.migrations.0003_condition_operators_one_language")

OLD_RULES = [
    {"when": {"email": {"exists": True}, "intent": ["complaint"]}, "action": "ticket"},
    {"when": {"any": [{"var": "phone", "exists": False}, {"not": {"var": "email", "exists": True}}]}, "action": "notify"},
    {"when": {"qualified": [True]}, "action": "follow_up_appointment", "service": "consultation"},
    {"action": "update_customer", "enabled": False},
]
NEW_RULES = [
    {"when": {"email": {"set": True}, "intent": ["complaint"]}, "action": "ticket"},
    {"when": {"any": [{"var": "phone", "set": False}, {"not": {"var": "email", "set": True}}]}, "action": "notify"},
    {"when": {"qualified": [True]}, "action": "follow_up_appointment", "service": "consultation"},
    {"action": "update_customer", "enabled": False},
]


def test_old_operator_names_are_rewritten_and_others_kept():
    with pytest.raises(ValidationError):
        validate_rule_list(OLD_RULES)
    assert migration.rules_upgrade(OLD_RULES) == NEW_RULES
    validate_rule_list(NEW_RULES)
    assert migration.rules_upgrade(NEW_RULES) == NEW_RULES  # twice changes nothing


def test_flow_conditions_are_rewritten_in_branches_and_skips():
    flow = {"start": "a", "steps": {
        "a": {"type": "branch", "next": [{"if": {"all": [{"var": "slots.x", "exists": True}]}, "goto": "b"}, {"goto": "b"}]},
        "b": {"type": "say", "say": "hi", "skip_if": {"var": "slots.y", "exists": False}, "next": "a"},
    }}
    upgraded = migration.flow_upgrade(flow)
    assert upgraded["steps"]["a"]["next"][0]["if"] == {"all": [{"var": "slots.x", "set": True}]}
    assert upgraded["steps"]["b"]["skip_if"] == {"var": "slots.y", "set": False}
    for built_in in DEFAULT_FLOWS.values():
        assert migration.flow_upgrade(built_in) == built_in
    assert migration.flow_upgrade({}) == {}


@pytest.mark.django_db
def test_migration_rewrites_stored_rows_without_a_new_version():
    from django.apps import apps

    agent = AgentConfigFactory(escalation_rules=NEW_RULES)
    # A row stored before the change, as the database holds it.
    AgentConfig.objects.filter(pk=agent.pk).update(escalation_rules=OLD_RULES)
    migration.agent_configs_upgrade(apps, None)
    agent.refresh_from_db()
    assert agent.escalation_rules == NEW_RULES
    assert agent.version == 1
