"""The data migration that turns caller verification back on in stored agents."""

import importlib
from pathlib import Path

import pytest
import yaml
from django.apps import apps

from agents.deterministic import DeterministicEngine
from agents.engine import CallContext
from agents.flows import default_flow
from agents.models import AgentConfig
from agents.tests.factories import AgentConfigFactory, AppointmentFactory, CustomerFactory
from agents.validators import flow_errors
from voicecrm.demo.agents import DEMO_AGENTS

migration = importlib.import_module("agents.migrations.0005_stored_flows_verify_callers")
pytestmark = pytest.mark.django_db

OLD_RECEPTION_FLOW = yaml.safe_load((Path(__file__).parent / "data" / "reception_flow_before_verification.yaml").read_text())
OLD_RECEPTION_TOOLS = ["find_customer", "create_customer_account", "get_appointments", "check_availability", "create_appointment",
                       "reschedule_appointment", "cancel_appointment", "get_orders", "search_knowledge_base", "end_call"]


def stored_reception_agent() -> AgentConfig:
    """The demo reception agent as a database from before this change holds it."""
    spec = next(a for a in DEMO_AGENTS if a["slug"] == "reception")
    agent = AgentConfig.objects.create(**spec)
    AgentConfig.objects.filter(pk=agent.pk).update(flow=OLD_RECEPTION_FLOW, enabled_tools=OLD_RECEPTION_TOOLS)
    return AgentConfig.objects.get(pk=agent.pk)


def test_the_stored_reception_agent_verifies_callers_afterwards():
    agent = stored_reception_agent()
    assert agent.identity_errors()  # what the database holds today could not be saved
    migration.agents_verify_callers(apps, None)
    agent.refresh_from_db()
    assert agent.identity_errors() == [] and flow_errors(agent.flow) == []
    assert "require_verification" not in agent.flow["identity"] and "verify_customer" in agent.enabled_tools
    assert agent.version == 1
    # The probe: a name and ZIP code of someone else no longer reach their appointment.
    customer = CustomerFactory(first_name="Omar", last_name="Haddad", postcode="94107")
    AppointmentFactory(customer=customer)
    engine = DeterministicEngine()
    ctx = CallContext(agent=agent)
    ctx.remember(engine.start(ctx))
    for line in ("I want to cancel my appointment", "Omar Haddad", "nine four one zero seven"):
        reply = engine.respond(ctx, text=line)
        ctx.remember(reply, caller_text=line)
    assert "date of birth" in reply.text and "Shall I cancel" not in reply.text
    # Twice changes nothing.
    before = (agent.flow, agent.enabled_tools)
    migration.agents_verify_callers(apps, None)
    agent.refresh_from_db()
    assert (agent.flow, agent.enabled_tools) == before


def test_built_in_flows_and_other_agents_are_left_alone():
    for scenario in ("customer_service", "driver_check_in", "lead_qualification", "reception"):
        flow = default_flow(scenario)
        assert migration.flow_upgrade(flow, OLD_RECEPTION_TOOLS) == flow
    custom = {"start": "a", "identity": {"require_verification": False}, "steps": {"a": {"type": "end"}}}
    agent = AgentConfigFactory(enabled_tools=["find_customer", "share_information"], flow=custom)
    migration.agents_verify_callers(apps, None)
    agent.refresh_from_db()
    assert agent.flow == custom and agent.enabled_tools == ["find_customer", "share_information"]
