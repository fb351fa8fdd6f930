"""The four demo agents, one per scenario pack (agents/scenarios/), and the demo knowledge base."""

from agents.scenarios import Scenario, scenario_get

# The demo's own wording where it differs from the pack: the reception names the demo's services.
DEMO_STEP_CHANGES = {
    "reception": {"book": {"prompt": "Which service would you like to book: a consultation, a fiber installation, or a repair visit?"}},
}


def _demo_agent(pack: Scenario) -> dict:
    spec = pack.agent_fields()
    for name, changes in DEMO_STEP_CHANGES.get(pack.slug, {}).items():
        spec["flow"]["steps"][name].update(changes)
    return spec


# Seeded in this order, support first, as the demo always was.
DEMO_PACKS = ("support", "dispatch", "leads", "reception")
DEMO_AGENTS = [_demo_agent(scenario_get(slug)) for slug in DEMO_PACKS]
KNOWLEDGE = [
    ("What are your opening hours?", "We're open Monday to Friday from nine to six, and Saturday from ten to two.", "hours"),
    ("How do I reset my router?", "Unplug the router for thirty seconds, plug it back in, and wait two minutes for the lights to turn solid green.", "technical,router,internet"),
    ("Why is my internet slow?", "Slow internet is often fixed by restarting the router. If it stays slow, we can run a line test and open a ticket.", "technical,internet,speed"),
    ("How can I pay my bill?", "You can pay online at northwind dot example slash pay, by direct debit, or by card over the phone.", "billing,payment"),
    ("When is my bill due?", "Bills are due fourteen days after the statement date shown on your bill.", "billing"),
    ("How do I cancel my contract?", "You can cancel with thirty days' notice. I can open a cancellation request for you.", "cancellation,contract"),
    ("Do you offer fiber?", "Yes, fiber plans start at forty nine dollars a month in most areas.", "sales,fiber,plans"),
    ("What is the premium plan?", "Premium includes gigabit internet, unlimited calls and priority support for seventy nine dollars a month.", "sales,plans"),
    ("Where are you located?", "Our office is at 100 Market Street, San Francisco.", "location,address"),
    ("How do I upload proof of delivery?", "Take a photo of the signed bill of lading and upload it in the driver app under Documents.", "dispatch,pod"),
    ("What should I do after an accident?", "Make sure everyone is safe, call nine one one if anyone is hurt, set out your triangles, and call dispatch.", "dispatch,emergency,safety"),
    ("How does the debt relief program work?", "We negotiate with your creditors to reduce what you owe; you make one monthly deposit into a dedicated account.", "leads,program"),
]
