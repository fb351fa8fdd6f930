import pytest
from django.core.management import call_command

from agents.models import AgentConfig
from customers.models import Customer
from voicecrm.demo.seed import seed_counts

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent():
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    first = seed_counts()
    versions = dict(AgentConfig.objects.values_list("slug", "version"))
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    assert seed_counts() == first
    assert dict(AgentConfig.objects.values_list("slug", "version")) == versions


def test_seed_demo_is_realistic():
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    counts = seed_counts()
    assert counts["customers"] >= 50
    assert Customer.objects.values("plan").distinct().count() >= 3
    assert Customer.objects.values("balance").distinct().count() >= 5
    assert set(AgentConfig.objects.values_list("scenario", flat=True)) == set(AgentConfig.Scenario.values)
    driver = AgentConfig.objects.get(scenario="driver_check_in").extraction_schema["properties"]
    assert {"driver_status", "current_location", "eta", "delay_reason", "injury_status", "load_secure"} <= set(driver)
    assert counts["turns"] > 0 and counts["knowledge entries"] >= 10
