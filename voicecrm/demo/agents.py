"""The four demo agents: one per scenario, with greetings, flows and extraction schemas."""

from agents.flows import default_flow


def _flow(scenario: str, *, steps: dict | None = None, **top) -> dict:
    """The built-in flow for `scenario` with the demo's own wording (docs/flows.md)."""
    flow = default_flow(scenario)
    flow.update(top)
    for name, changes in (steps or {}).items():
        flow["steps"][name].update(changes)
    return flow


DRIVER_SCHEMA = {
    "type": "object",
    "properties": {
        "driver_status": {"enum": ["on_schedule", "delayed", "arrived", "loading", "unloading", "broken_down"]},
        "current_location": {"type": "string", "description": "Highway, city or facility."},
        "eta": {"type": "string", "format": "date-time"},
        "delay_reason": {"type": "string"},
        "unloading_status": {"enum": ["not_started", "in_progress", "done", "not_applicable"]},
        "pod_reminder_acknowledged": {"type": "boolean"},
        "emergency_type": {"enum": ["none", "collision", "mechanical", "medical", "fire", "security", "other"]},
        "safety_status": {"enum": ["safe", "unsafe", "unknown"]},
        "injury_status": {"enum": ["none", "minor", "serious", "unknown"]},
        "location": {"type": "string", "description": "Where the emergency is."},
        "load_secure": {"type": "boolean"},
        "escalation_status": {"enum": ["not_needed", "escalated", "transferred"]},
    },
    "required": ["driver_status"],
}

LEAD_SCHEMA = {
    "type": "object",
    "properties": {
        "full_name": {"type": "string"},
        "phone": {"type": "string"},
        "email": {"type": "string"},
        "debt_amount": {"type": "number", "minimum": 0},
        "debt_types": {"type": "string", "description": "Comma-separated: credit_card, medical, personal_loan…"},
        "employment_status": {"enum": ["employed", "self_employed", "unemployed", "retired"]},
        "monthly_income": {"type": "number", "minimum": 0},
        "qualified": {"type": "boolean"},
    },
    "required": ["debt_amount", "qualified"],
}

SERVICE_SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string"},
        "resolution": {"enum": ["resolved", "ticket_created", "transferred", "unresolved"]},
        "ticket_needed": {"type": "boolean"},
    },
    "required": ["intent", "resolution"],
}

RECEPTION_SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string"},
        "appointment_action": {"enum": ["booked", "rescheduled", "cancelled", "none"]},
        "appointment_time": {"type": "string", "format": "date-time"},
    },
    "required": ["intent"],
}

DEMO_AGENTS = [
    {
        "slug": "support",
        "name": "Customer support",
        "scenario": "customer_service",
        "greeting": "Thanks for calling Northwind support, this is Joe. How can I help you today?",
        "closing": "Thanks for calling Northwind. Have a great day, goodbye!",
        "persona": "You are Joe, a friendly and efficient support agent for Northwind, an internet and phone provider.",
        "enabled_tools": [
            "find_customer", "verify_customer", "get_account_summary", "create_ticket", "get_orders",
            "search_knowledge_base", "transfer_to_human", "end_call",
        ],
        "extraction_schema": SERVICE_SCHEMA,
        "escalation_rules": [{"when": {"intent": ["complaint", "cancellation"]}, "action": "ticket", "priority": "high"}],
        "flow": _flow("customer_service", greeting_known=(
            "Hi {customer.first_name}, thanks for calling Northwind support, this is Joe. How can I help you today?")),
        "transfer_target": "+14155550100",
    },
    {
        "slug": "dispatch",
        "name": "Driver check-in",
        "scenario": "driver_check_in",
        "greeting": "Hi, this is dispatch check-in. What's your status right now?",
        "closing": "Thanks, drive safe. Goodbye!",
        "persona": "You are the dispatch assistant for a trucking company. Be brief; drivers are on the road.",
        "enabled_tools": ["find_customer", "create_ticket", "share_information", "transfer_to_human", "end_call"],
        "extraction_schema": DRIVER_SCHEMA,
        "escalation_rules": [
            {"when": {"injury_status": ["minor", "serious"]}, "action": "urgent_ticket", "notify": "supervisors"},
            {"when": {"emergency_type": ["collision", "fire", "medical", "security"]}, "action": "urgent_ticket"},
        ],
        "flow": _flow("driver_check_in", greeting_known="Hi {customer.first_name}, this is dispatch check-in. What's your status right now?"),
        "transfer_target": "+14155550111",
    },
    {
        "slug": "leads",
        "name": "Debt relief qualification",
        "scenario": "lead_qualification",
        "greeting": "Hi, thanks for your interest in debt relief. I have a few quick questions to see how we can help. Is now a good time?",
        "closing": "Thanks for your time. Goodbye!",
        "persona": "You qualify leads for a debt relief programme: unsecured debt of at least ten thousand dollars.",
        "enabled_tools": ["find_customer", "create_customer_account", "share_information", "transfer_to_human", "end_call"],
        "extraction_schema": LEAD_SCHEMA,
        "escalation_rules": [{"when": {"qualified": [True]}, "action": "follow_up_appointment", "service": "consultation"}],
        "flow": _flow("lead_qualification"),
        "transfer_target": "+14155550122",
    },
    {
        "slug": "reception",
        "name": "Front desk",
        "scenario": "reception",
        "greeting": "Good day, you've reached the Northwind front desk. I can book, move or cancel appointments. How can I help?",
        "closing": "Thank you for calling. Goodbye!",
        "persona": "You are the receptionist. Confirm dates and times back to the caller.",
        "enabled_tools": [
            "find_customer", "create_customer_account", "get_appointments", "check_availability", "create_appointment",
            "reschedule_appointment", "cancel_appointment", "get_orders", "search_knowledge_base", "end_call",
        ],
        "extraction_schema": RECEPTION_SCHEMA,
        "escalation_rules": [],
        "flow": _flow("reception", greeting_known=(
            "Good day {customer.first_name}, you've reached the Northwind front desk. I can book, move or cancel appointments. "
            "How can I help?"), steps={"book": {"prompt": (
                "Which service would you like to book: a consultation, a fiber installation, or a repair visit?")}}),
        "transfer_target": "",
    },
]

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
