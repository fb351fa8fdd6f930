"""Four conversations, one per demo agent scenario, and what the pipeline must make of them.

Used twice: as live turns (fast unit tests of extraction and actions) and voiced by Piper
into a stereo recording (caller left, agent right) for the real-worker tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    agent: str  # demo agent slug
    lines: list[tuple[str, str]]
    expected: dict = field(default_factory=dict)  # exact field values
    contains: dict = field(default_factory=dict)  # field -> substrings (locations, lists)
    customer_account: str | None = None


CHECK_IN = Scenario(
    name="check_in",
    agent="dispatch",
    lines=[
        ("agent", "Hi, this is dispatch check-in. What's your status right now?"),
        ("caller", "Hi, I'm running about an hour late. There's heavy traffic on I-80 near Reno."),
        ("agent", "Got it, you're delayed by traffic near Reno. When do you expect to arrive?"),
        ("caller", "Around four thirty this afternoon."),
        ("agent", "Thanks. Please remember to upload the proof of delivery when you unload."),
        ("caller", "Will do, thanks."),
        ("agent", "Thanks, drive safe. Goodbye!"),
    ],
    expected={"driver_status": "delayed", "delay_reason": "traffic", "pod_reminder_acknowledged": True,
              "emergency_type": "none", "escalation_status": "not_needed"},
    contains={"current_location": ["Reno"], "eta": ["T16:30"]},
)

EMERGENCY = Scenario(
    name="emergency",
    agent="dispatch",
    lines=[
        ("agent", "Hi, this is dispatch check-in. What's your status right now?"),
        ("caller", "I've just been in an accident. A car hit my trailer and my truck is broken down."),
        ("agent", "I'm sorry to hear that. Are you safe right now?"),
        ("caller", "Yes, I'm safe. I pulled over on the shoulder."),
        ("agent", "Is anyone hurt?"),
        ("caller", "I have a small cut on my arm. It's minor."),
        ("agent", "Where exactly are you?"),
        ("caller", "On Highway 50 near Carson City."),
        ("agent", "Is your load secure?"),
        ("caller", "Yes, the load is secure."),
        ("agent", "Thank you. I'm alerting a supervisor now, and we'll send help. Stay safe."),
    ],
    expected={"driver_status": "broken_down", "emergency_type": "collision", "injury_status": "minor",
              "safety_status": "safe", "load_secure": True, "escalation_status": "escalated"},
    contains={"location": ["Carson City"]},
)

LEAD = Scenario(
    name="lead_qualification",
    agent="leads",
    lines=[
        ("agent", "Hi, thanks for your interest in debt relief. I have a few quick questions. Is now a good time?"),
        ("caller", "Yes, sure."),
        ("agent", "Great. What's your full name?"),
        ("caller", "Maria Garcia."),
        ("agent", "Thanks Maria. How much unsecured debt do you have in total?"),
        ("caller", "About twenty five thousand dollars."),
        ("agent", "What kinds of debt are they?"),
        ("caller", "Mostly credit cards, and some medical bills."),
        ("agent", "Are you currently employed?"),
        ("caller", "Yes, I work full time as a nurse."),
        ("agent", "And what is your monthly income?"),
        ("caller", "About four thousand two hundred dollars a month."),
        ("agent", "What's the best email address to reach you?"),
        ("caller", "It's maria dot garcia at example dot com."),
        ("agent", "Good news, you qualify for our program. A specialist will call you for a free consultation."),
        ("caller", "Great, thank you."),
    ],
    expected={"full_name": "Maria Garcia", "debt_amount": 25000, "employment_status": "employed",
              "monthly_income": 4200, "email": "maria.garcia@example.com", "qualified": True},
    contains={"debt_types": ["credit_card", "medical"]},
)

# The lead flow's own questions: the income question ("how much do you bring home") also holds the
# debt field's cue "how much", and must not make the income the debt amount.
LEAD_FLOW_PROMPTS = Scenario(
    name="lead_flow_prompts",
    agent="leads",
    lines=[
        ("agent", "Hi, thanks for your interest in debt relief. I have a few quick questions to see how we can help. "
                  "Is now a good time?"),
        ("caller", "Yes."),
        ("agent", "Great. Let's start with your full name."),
        ("caller", "John Smith."),
        ("agent", "Roughly how much unsecured debt do you have in total, across credit cards, medical bills and loans?"),
        ("caller", "About twenty thousand dollars."),
        ("agent", "What kinds of debt are those? For example credit cards, medical bills, or personal loans."),
        ("caller", "Credit cards."),
        ("agent", "Are you currently employed, self-employed, retired, or not working at the moment?"),
        ("caller", "I'm employed."),
        ("agent", "And roughly how much do you bring home each month?"),
        ("caller", "3000 a month."),
        ("agent", "Good news, John: it looks like you qualify for the programme."),
    ],
    expected={"full_name": "John Smith", "debt_amount": 20000, "monthly_income": 3000, "employment_status": "employed",
              "debt_types": "credit_card", "qualified": True},
)

SUPPORT = Scenario(
    name="customer_service",
    agent="support",
    lines=[
        ("agent", "Thanks for calling Northwind support, this is Joe. How can I help you today?"),
        ("caller", "Hi, I want to make a complaint. The technician missed my appointment twice this week."),
        ("agent", "I'm sorry about that. I've opened a ticket for you, and a supervisor will call you back tomorrow."),
        ("caller", "Okay, thanks."),
        ("agent", "Thanks for calling Northwind. Have a great day, goodbye!"),
    ],
    expected={"intent": "complaint", "resolution": "ticket_created", "ticket_needed": True},
    customer_account="10004",
)

ALL = [CHECK_IN, EMERGENCY, LEAD, SUPPORT]
