import factory

from agents.models import AgentConfig, KnowledgeEntry
from customers.tests.factories import (  # noqa: F401
    AppointmentFactory,
    CustomerFactory,
    OrderFactory,
    ServiceFactory,
)

ALL_TOOLS = [
    "find_customer", "verify_customer", "get_account_summary", "create_ticket", "create_customer_account",
    "get_appointments", "check_availability", "create_appointment", "reschedule_appointment", "cancel_appointment",
    "get_orders", "search_knowledge_base", "share_information", "transfer_to_human", "end_call",
]


class AgentConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentConfig

    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.Sequence(lambda n: f"agent-{n}")
    scenario = AgentConfig.Scenario.CUSTOMER_SERVICE
    greeting = "Thanks for calling. How can I help?"
    closing = "Goodbye!"
    enabled_tools = factory.LazyFunction(lambda: list(ALL_TOOLS))
    transfer_target = "+14155550100"


class KnowledgeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeEntry

    title = factory.Sequence(lambda n: f"Question {n}?")
    answer = "An answer."
