"""The built-in flow for each scenario, used when an AgentConfig's `flow` is empty.

The format is documented in docs/flows.md; supervisors copy one of these into the admin and edit
it. Every flow here passes `validate_flow` (agents/validators.py).
"""

from __future__ import annotations

import copy

_END_STEPS = {
    "end": {"type": "end", "reason": "caller_goodbye"},
    "done": {"type": "end", "reason": "resolved"},
}

CUSTOMER_SERVICE = {
    "version": 1,
    "start": "main",
    "identity": {"entry": "identify", "locked": "locked_again", "max_attempts": 3},
    "phrases": {
        "open_ticket": ["open a ticket", "a ticket please", "raise a ticket", "log a ticket", "have someone call me back",
                        "call me back", "ticket"],
    },
    "slots": {
        "account_number": {"entity": "account_number", "eager": True},
        "order_number": {"entity": "order_number", "eager": False},
    },
    "global": [
        {"dtmf": "0", "goto": "transfer"},
        {"intent": "human_agent", "goto": "transfer", "min_confidence": 0.6},
        {"intent": "goodbye", "goto": "end", "min_confidence": 0.6, "except": ["anything_else"]},
    ],
    "routes": {
        "greeting": "main_again", "billing_balance": "balance", "payment": "payment", "technical_support": "tech",
        "account_info": "account", "update_details": "update_details", "new_service": "new_service",
        "cancellation": "cancellation", "complaint": "complaint", "order_status": "orders",
        "knowledge_question": "knowledge", "human_agent": "transfer", "goodbye": "end", "open_ticket": "ticket",
        "book_appointment": "appointments_elsewhere", "reschedule_appointment": "appointments_elsewhere",
        "cancel_appointment": "appointments_elsewhere", "availability": "knowledge",
        "affirm": "what_else", "deny": "anything_else",
    },
    "default_route": "knowledge",
    "fallback": "offer_human",
    "steps": {
        "main": {"type": "route", "save_text_as": "request",
                 "reprompt": "Sorry, I didn't catch that. You can ask about your bill, a technical problem, an order, or anything else."},
        "main_again": {"type": "route", "save_text_as": "request", "prompt": "Hello! How can I help you today?"},
        "anything_else": {"type": "route", "save_text_as": "request", "prompt": "Is there anything else I can help you with?",
                          "routes": {"deny": "done", "goodbye": "done", "affirm": "what_else"}},
        "what_else": {"type": "route", "save_text_as": "request", "prompt": "Sure, what else can I help with?"},

        # Identity: the account number (or the caller ID match), then the date of birth.
        "identify": {"type": "branch", "next": [
            {"if": {"var": "identity.locked", "eq": True}, "goto": "locked_again"},
            {"if": {"var": "identity.verified", "eq": True}, "goto": "verified"},
            {"if": {"var": "customer.id", "set": True}, "goto": "ask_dob"},
            {"goto": "ask_account"},
        ]},
        "ask_account": {"type": "ask", "slot": "account_number", "entity": "account_number",
                        "prompt": "I can help with that. First, can I have your account number, please?",
                        "reprompt": "Sorry, I didn't get that. Please say your account number digit by digit, or key it in.",
                        "on_fail": "identify_failed", "next": "lookup"},
        "lookup": {"type": "tool", "tool": "find_customer", "args": {"account_number": "{slots.account_number}"},
                   "next": [{"if": {"var": "result.found", "eq": True}, "goto": "ask_dob"}, {"goto": "not_found"}]},
        "not_found": {"type": "set", "say": "I couldn't find an account with the number {slots.account_number:spell}.",
                      "clear": ["account_number"], "count": {"lookups": 1},
                      "next": [{"if": {"var": "counters.lookups", "gte": 2}, "goto": "identify_failed"}, {"goto": "ask_account_again"}]},
        "ask_account_again": {"type": "ask", "slot": "account_number", "entity": "account_number",
                              "prompt": "Could you give me the account number again?", "on_fail": "identify_failed", "next": "lookup"},
        "identify_failed": {"type": "say", "say": "I'm sorry, I couldn't find your account.", "clear_stack": True, "next": "offer_human"},
        "ask_dob": {"type": "ask", "slot": "date_of_birth", "entity": "date_of_birth",
                    "prompt": "Thanks {customer.first_name}. For security, can you tell me your date of birth?",
                    "reprompt": "Please tell me your date of birth, for example the fifth of May nineteen eighty.",
                    "on_fail": "offer_human", "next": "verify"},
        "verify": {"type": "tool", "tool": "verify_customer", "args": {"date_of_birth": "{slots.date_of_birth}"}, "next": [
            {"if": {"var": "result.verified", "eq": True}, "goto": "verified"},
            {"if": {"var": "result.locked", "eq": True}, "goto": "locked"},
            {"goto": "verify_retry"},
        ]},
        "verify_retry": {"type": "set", "say": "Sorry, that doesn't match our records.", "clear": ["date_of_birth"], "next": "ask_dob_again"},
        "ask_dob_again": {"type": "ask", "slot": "date_of_birth", "entity": "date_of_birth",
                          "prompt": "Could you tell me your date of birth again?", "on_fail": "offer_human", "next": "verify"},
        "verified": {"type": "return", "say": "Thank you, you're verified.", "next": "anything_else"},
        "locked": {"type": "say", "clear_stack": True,
                   "say": ("I'm sorry, I can't verify your identity on this call, so I can't discuss the account. "
                           "I've opened ticket {identity.ticket:spell} and the account team will contact the account holder."),
                   "next": "anything_else"},
        "locked_again": {"type": "say", "clear_stack": True,
                         "say": "I'm sorry, I can't help with account questions on this call because verification is locked.",
                         "next": "anything_else"},

        # Answers from the CRM.
        "balance": {"type": "tool", "tool": "get_account_summary", "requires": "account",
                    "say_ok": "You have {result.balance_text} on your account.", "next": "anything_else"},
        "account": {"type": "tool", "tool": "get_account_summary", "requires": "account",
                    "say_ok": "You're on the {result.plan} plan, your account is {result.status}, and you have {result.balance_text}.",
                    "next": [{"if": {"var": "result.open_tickets_text", "set": True}, "goto": "account_tickets"}, {"goto": "anything_else"}]},
        "account_tickets": {"type": "say", "say": "Your open tickets are {result.open_tickets_text}.", "next": "anything_else"},
        "orders": {"type": "tool", "tool": "get_orders", "requires": "account", "args": {"order_number": "{slots.order_number}"},
                   "next": [{"if": {"var": "result.count", "gte": 1}, "goto": "orders_say"}, {"goto": "no_orders"}]},
        "orders_say": {"type": "say", "say": "Your {result.latest.text}.", "next": "anything_else"},
        "no_orders": {"type": "say", "say": "I can't find any orders on your account.", "next": "anything_else"},

        # Answers from the knowledge base, with a ticket or a person when it has none.
        "payment": {"type": "knowledge", "query": "how can I pay my bill", "next": "anything_else", "on_miss": "offer_help"},
        "tech": {"type": "knowledge", "query": "{slots.request}", "next": "tech_helped", "on_miss": "tech_ticket_offer",
                 "say_miss": "I'm sorry you're having trouble."},
        "tech_helped": {"type": "confirm", "prompt": "Did that help?", "yes": "anything_else", "no": "tech_ticket"},
        "tech_ticket_offer": {"type": "confirm", "prompt": "Shall I open a ticket for our technical team?", "yes": "tech_ticket", "no": "anything_else"},
        "tech_ticket": {"type": "tool", "tool": "create_ticket", "requires": "identified",
                        "args": {"subject": "Technical problem reported on a call", "description": "{slots.request}",
                                 "category": "technical", "priority": "normal"},
                        "say_ok": "I've opened ticket {result.reference_text} for our technical team.",
                        "say_error": "Sorry, I couldn't open a ticket just now.", "next": "ticket_due"},
        "new_service": {"type": "knowledge", "query": "{slots.request}", "say_miss": "", "next": "sales_offer", "on_miss": "sales_offer"},
        "sales_offer": {"type": "confirm", "prompt": "Would you like our sales team to call you back about it?", "yes": "sales_ticket", "no": "anything_else"},
        "sales_ticket": {"type": "tool", "tool": "create_ticket", "requires": "identified",
                         "args": {"subject": "Callback about a new service", "description": "{slots.request}", "category": "sales", "priority": "low"},
                         "say_ok": "Done: ticket {result.reference_text}. Our sales team will call you back.", "next": "anything_else"},
        "knowledge": {"type": "knowledge", "query": "{text}", "next": "anything_else", "on_miss": "offer_help"},
        "offer_help": {"type": "route", "default": "",
                       "reprompt": "Shall I open a ticket so someone gets back to you, or put you through to a person?",
                       "routes": {"affirm": "ticket", "open_ticket": "ticket", "deny": "anything_else", "human_agent": "transfer"}},

        # Tickets.
        "update_details": {"type": "ask", "requires": "account", "slot": "new_details", "entity": "text",
                           "prompt": "What would you like to update, and what should it be?", "next": "update_ticket"},
        "update_ticket": {"type": "tool", "tool": "create_ticket",
                          "args": {"subject": "Update account details", "description": "{slots.new_details}", "category": "account"},
                          "say_ok": "Thanks. I've passed that to our accounts team as ticket {result.reference_text}.", "next": "ticket_due"},
        "cancellation": {"type": "ask", "requires": "account", "slot": "cancel_reason", "entity": "text",
                         "prompt": "I'm sorry to hear you want to leave. Can I ask why you'd like to cancel?", "next": "cancel_ticket"},
        "cancel_ticket": {"type": "tool", "tool": "create_ticket",
                          "args": {"subject": "Cancellation request", "description": "{slots.cancel_reason}",
                                   "category": "cancellation", "priority": "high"},
                          "say_ok": "I've opened cancellation request {result.reference_text}. Our retention team will contact you to confirm it.",
                          "next": "ticket_due"},
        "complaint": {"type": "ask", "slot": "complaint", "entity": "text",
                      "prompt": "I'm sorry about that. Please tell me what happened, and I'll log it for a manager.", "next": "complaint_ticket"},
        "complaint_ticket": {"type": "tool", "tool": "create_ticket", "requires": "identified",
                             "args": {"subject": "Complaint from a call", "description": "{slots.request} / {slots.complaint}",
                                      "category": "complaint", "priority": "high"},
                             "say_ok": "I've logged your complaint as ticket {result.reference_text}, with high priority.", "next": "ticket_due"},
        "ticket": {"type": "tool", "tool": "create_ticket", "requires": "identified",
                   "args": {"subject": "Caller asked for a callback", "description": "{slots.request}", "category": "other"},
                   "say_ok": "I've opened ticket {result.reference_text}; someone will get back to you.", "next": "ticket_due"},
        "ticket_due": {"type": "say", "skip_if": {"var": "result.sla_due_at", "set": False},
                       "say": "We aim to resolve it by {result.sla_due_at:datetime}.", "next": "anything_else"},
        "appointments_elsewhere": {"type": "say", "next": "offer_help",
                                   "say": "I can't manage appointments on this line, but I can open a ticket or put you through to a person."},

        # People and endings.
        "offer_human": {"type": "confirm", "prompt": "Would you like me to put you through to a person?", "yes": "transfer", "no": "anything_else"},
        "transfer": {"type": "transfer", "reason": "caller_request", "say_ok": "Sure, I'm transferring you to a colleague now. Please hold.",
                     "say_error": "I'm sorry, nobody is available to take your call right now.", "on_fail": "transfer_failed"},
        "transfer_failed": {"type": "confirm", "prompt": "Shall I open a ticket so someone calls you back?", "yes": "ticket", "no": "anything_else"},
        **_END_STEPS,
    },
}

DRIVER_CHECK_IN = {
    "version": 1,
    "start": "status",
    "slots": {
        "driver_status": {"entity": "driver_status", "eager": True},
        "current_location": {"entity": "location", "eager": True},
        "eta": {"entity": "eta", "eager": True},
        "delay_reason": {"entity": "delay_reason", "eager": True},
        "location": {"entity": "location", "eager": True},
    },
    "global": [
        {"entity": "emergency", "slot": "emergency_type", "goto": "emergency", "once": True, "label": "emergency"},
        {"intent": "human_agent", "goto": "dispatcher", "min_confidence": 0.6},
        {"dtmf": "0", "goto": "dispatcher"},
    ],
    "fallback": "dispatcher",
    "steps": {
        "status": {"type": "ask", "slot": "driver_status", "entity": "driver_status",
                   "reprompt": "Sorry, are you on schedule, delayed, loading, unloading, or already there?", "next": "location"},
        "location": {"type": "ask", "slot": "current_location", "entity": "location", "prompt": "Got it. Where are you right now?",
                     "reprompt": "Which highway, city or facility are you at?", "otherwise": "{text}", "next": "after_location"},
        "after_location": {"type": "branch", "next": [
            {"if": {"var": "slots.driver_status", "in": ["arrived", "unloading"]}, "goto": "unloading"},
            {"goto": "eta"},
        ]},
        "eta": {"type": "ask", "slot": "eta", "entity": "eta", "prompt": "What's your ETA?",
                "reprompt": "When do you expect to arrive? For example: in two hours, or four thirty pm.", "max_attempts": 2,
                "on_fail": "after_eta", "next": "after_eta"},
        "after_eta": {"type": "branch", "next": [
            {"if": {"var": "slots.driver_status", "in": ["delayed", "broken_down"]}, "goto": "delay_reason"},
            {"goto": "not_unloading"},
        ]},
        "delay_reason": {"type": "ask", "slot": "delay_reason", "entity": "delay_reason", "prompt": "What's causing the delay?",
                         "otherwise": "other", "next": "not_unloading"},
        "not_unloading": {"type": "set", "slots": {"unloading_status": "not_applicable"}, "next": "pod"},
        "unloading": {"type": "ask", "slot": "unloading_status", "entity": "unloading_status",
                      "prompt": "What's the unloading status: not started, in progress, or done?", "next": "pod"},
        "pod": {"type": "confirm", "slot": "pod_reminder_acknowledged", "max_attempts": 2, "on_fail": "share",
                "prompt": "Please remember to upload the signed proof of delivery in the driver app. Will do?",
                "yes": "share", "no": "pod_no"},
        "pod_no": {"type": "say", "say": "Okay, dispatch will remind you later.", "next": "share"},
        "share": {"type": "tool", "tool": "share_information", "next": "wrap", "args": {"category": "driver_check_in", "items": {
            "driver_status": "{slots.driver_status}", "current_location": "{slots.current_location}", "eta": "{slots.eta}",
            "delay_reason": "{slots.delay_reason}", "unloading_status": "{slots.unloading_status}",
            "pod_reminder_acknowledged": "{slots.pod_reminder_acknowledged}", "escalation_status": "not_needed"}}},
        "wrap": {"type": "branch", "next": [
            {"if": {"var": "slots.eta", "set": True}, "goto": "wrap_eta"}, {"goto": "wrap_plain"}]},
        "wrap_eta": {"type": "say", "say": "Thanks, I've logged you as {slots.driver_status:words} at {slots.current_location}, ETA {slots.eta:time}.",
                     "next": "end"},
        "wrap_plain": {"type": "say", "say": "Thanks, I've logged you as {slots.driver_status:words} at {slots.current_location}.", "next": "end"},
        "end": {"type": "end", "reason": "check_in_complete"},

        # Emergency: safety, injuries, location, load; then an urgent ticket and a person.
        "emergency": {"type": "ask", "slot": "safety_status", "entity": "safety_status", "clear_stack": True,
                      "say": "I'm sorry to hear that. I'm getting this to a dispatcher right away.",
                      "prompt": "First, are you safe right now?", "otherwise": "unknown", "next": "injuries"},
        "injuries": {"type": "ask", "slot": "injury_status", "entity": "injury_status", "prompt": "Is anyone hurt?",
                     "otherwise": "unknown", "next": "emergency_location"},
        "emergency_location": {"type": "ask", "slot": "location", "entity": "location", "prompt": "Where exactly are you?",
                               "otherwise": "{text}", "next": "load"},
        "load": {"type": "confirm", "slot": "load_secure", "prompt": "Is the load secure?", "max_attempts": 1,
                 "on_fail": "emergency_log", "yes": "emergency_log", "no": "emergency_log"},
        "emergency_log": {"type": "tool", "tool": "share_information", "next": "emergency_ticket", "args": {"category": "emergency", "items": {
            "emergency_type": "{slots.emergency_type}", "safety_status": "{slots.safety_status}", "injury_status": "{slots.injury_status}",
            "location": "{slots.location}", "load_secure": "{slots.load_secure}", "driver_status": "{slots.driver_status}",
            "escalation_status": "escalated"}}},
        "emergency_ticket": {"type": "tool", "tool": "create_ticket", "next": "emergency_911",
                             "args": {"subject": "Driver emergency: {slots.emergency_type:words}", "category": "emergency", "priority": "urgent",
                                      "description": ("Emergency reported on a check-in call. Type: {slots.emergency_type}. "
                                                      "Safety: {slots.safety_status}. Injuries: {slots.injury_status}. "
                                                      "Location: {slots.location}. Load secure: {slots.load_secure}.")},
                             "say_ok": "I've opened urgent ticket {result.reference_text}."},
        "emergency_911": {"type": "say", "skip_if": {"var": "slots.injury_status", "in": ["none"]},
                          "say": "If anyone is hurt, call nine one one now if you haven't already.", "next": "emergency_transfer"},
        "emergency_transfer": {"type": "transfer", "reason": "emergency", "say_ok": "I'm connecting you to the on-call dispatcher now. Stay on the line.",
                               "say_error": "", "on_fail": "emergency_escalate"},
        "emergency_escalate": {"type": "escalate", "reason": "emergency",
                               "say": "A supervisor has been alerted and will call you back within minutes. Stay safe."},
        "dispatcher": {"type": "transfer", "reason": "caller_request", "say_ok": "Okay, putting you through to a dispatcher.",
                       "say_error": "Nobody in dispatch can take the call right now; I'll log what you've told me.", "on_fail": "share"},
    },
}

LEAD_QUALIFICATION = {
    "version": 1,
    "start": "good_time",
    "phrases": {"do_not_call": ["stop calling me", "take me off your list", "do not call me", "remove my number", "not interested"]},
    "slots": {
        "debt_amount": {"entity": "money", "eager": False},
        "debt_types": {"entity": "debt_types", "eager": True},
        "employment_status": {"entity": "employment_status", "eager": True},
        "email": {"entity": "email", "eager": True},
    },
    "global": [
        {"intent": "do_not_call", "goto": "do_not_call", "min_confidence": 0.6},
        {"intent": "human_agent", "goto": "transfer", "min_confidence": 0.6},
        {"intent": "goodbye", "goto": "end", "min_confidence": 0.7},
    ],
    "fallback": "callback_time",
    "steps": {
        "good_time": {"type": "confirm", "yes": "name", "no": "callback_time",
                      "reprompt": "Sorry, is now a good time for a few quick questions?"},
        "callback_time": {"type": "ask", "slot": "callback_time", "entity": "datetime", "otherwise": "{text}",
                          "prompt": "No problem. When would be a better time to call you back?", "next": "callback_log"},
        "callback_log": {"type": "tool", "tool": "share_information", "next": "callback_end", "args": {
            "category": "conversation_flow", "items": {"callback_requested": True, "callback_time": "{slots.callback_time}"}}},
        "callback_end": {"type": "end", "reason": "callback", "say": "Great, we'll call you back then. Thanks, goodbye!"},

        "name": {"type": "ask", "slot": "name", "entity": "name", "prompt": "Great. Let's start with your full name.",
                 "reprompt": "Sorry, could you tell me your first and last name?", "next": "phone_check"},
        "phone_check": {"type": "branch", "next": [{"if": {"var": "caller_number", "set": True}, "goto": "phone_confirm"}, {"goto": "phone"}]},
        "phone_confirm": {"type": "confirm", "prompt": "Thanks, {slots.name.first}. Is the number you're calling from the best one to reach you?",
                          "yes": "phone_same", "no": "phone"},
        "phone_same": {"type": "set", "slots": {"phone": "{caller_number}"}, "next": "email"},
        "phone": {"type": "ask", "slot": "phone", "entity": "phone", "prompt": "What's the best phone number to reach you?", "next": "email"},
        "email": {"type": "ask", "slot": "email", "entity": "email", "optional": True,
                  "prompt": "And your email address? You can spell it out, or say skip.", "next": "debt_amount"},
        "debt_amount": {"type": "ask", "slot": "debt_amount", "entity": "money",
                        "prompt": "Roughly how much unsecured debt do you have in total, across credit cards, medical bills and loans?",
                        "reprompt": "About how many dollars in total? A rough number is fine.", "next": "debt_types"},
        "debt_types": {"type": "ask", "slot": "debt_types", "entity": "debt_types",
                       "prompt": "What kinds of debt are those? For example credit cards, medical bills, or personal loans.",
                       "otherwise": "{text}", "next": "contact_log"},
        "contact_log": {"type": "tool", "tool": "share_information", "next": "debt_log", "args": {"category": "contact_details", "items": {
            "full_name": "{slots.name.full}", "phone": "{slots.phone}", "email": "{slots.email}"}}},
        "debt_log": {"type": "tool", "tool": "share_information", "next": "employment", "args": {"category": "debt_info", "items": {
            "debt_amount": "{slots.debt_amount}", "debt_types": "{slots.debt_types}"}}},
        "employment": {"type": "ask", "slot": "employment_status", "entity": "employment_status",
                       "prompt": "Are you currently employed, self-employed, retired, or not working at the moment?", "next": "income_check"},
        "income_check": {"type": "branch", "next": [
            {"if": {"var": "slots.employment_status", "eq": "unemployed"}, "goto": "no_income"}, {"goto": "income"}]},
        "no_income": {"type": "set", "slots": {"monthly_income": 0}, "next": "personal_log"},
        "income": {"type": "ask", "slot": "monthly_income", "entity": "income", "prompt": "And roughly how much do you bring home each month?",
                   "reprompt": "About how much a month, before or after tax is fine?", "next": "personal_log"},
        "personal_log": {"type": "tool", "tool": "share_information", "next": "decide", "args": {"category": "personal_info", "items": {
            "employment_status": "{slots.employment_status}", "monthly_income": "{slots.monthly_income}"}}},
        # The programme: at least $10,000 of unsecured debt and an income to make the monthly deposit from.
        "decide": {"type": "branch", "next": [
            {"if": {"var": "slots.debt_amount", "lt": 10000}, "goto": "nq_debt"},
            {"if": {"any": [{"var": "slots.employment_status", "eq": "unemployed"}, {"var": "slots.monthly_income", "lt": 1000}]},
             "goto": "nq_income"},
            {"goto": "qualified"},
        ]},
        "qualified": {"type": "tool", "tool": "share_information", "next": "create_account", "args": {"category": "qualification", "items": {
            "qualified": True, "reason": "meets_debt_and_income"}}},
        "create_account": {"type": "tool", "tool": "create_customer_account", "next": "qualified_say", "args": {
            "first_name": "{slots.name.first}", "last_name": "{slots.name.last}", "phone": "{slots.phone}", "email": "{slots.email}",
            "status": "prospect"}},
        "qualified_say": {"type": "say", "say": "Good news, {slots.name.first}: it looks like you qualify for the programme.",
                          "next": "qualified_transfer"},
        "qualified_transfer": {"type": "transfer", "reason": "qualified_transfer",
                               "say_ok": "I'm transferring you now to a debt specialist who will go through your options.",
                               "say_error": "", "on_fail": "qualified_callback"},
        "qualified_callback": {"type": "end", "reason": "qualified_callback",
                               "say": "A debt specialist will call you back within one business day. Thanks, goodbye!"},
        "nq_debt": {"type": "tool", "tool": "share_information", "next": "nq_debt_end", "args": {"category": "qualification", "items": {
            "qualified": False, "reason": "debt_below_minimum"}}},
        "nq_debt_end": {"type": "end", "reason": "not_qualified",
                        "say": ("Thanks for your answers. Our programme needs at least ten thousand dollars of unsecured debt, "
                                "so it isn't the right fit right now. Thanks for your time, goodbye!")},
        "nq_income": {"type": "tool", "tool": "share_information", "next": "nq_income_end", "args": {"category": "qualification", "items": {
            "qualified": False, "reason": "no_regular_income"}}},
        "nq_income_end": {"type": "end", "reason": "not_qualified",
                          "say": ("Thanks for your answers. The programme needs a regular income for the monthly deposit, "
                                  "so it isn't the right fit right now. Thanks for your time, goodbye!")},
        "do_not_call": {"type": "tool", "tool": "share_information", "next": "do_not_call_end", "args": {
            "category": "conversation_flow", "items": {"do_not_call": True}}},
        "do_not_call_end": {"type": "end", "reason": "do_not_call", "say": "Understood, we won't call you again. Goodbye."},
        "transfer": {"type": "transfer", "reason": "caller_request", "say_ok": "Sure, I'll put you through to a specialist.",
                     "on_fail": "callback_time", "say_error": "Nobody is free right now."},
        "end": {"type": "end", "reason": "caller_goodbye"},
    },
}

RECEPTION = {
    "version": 1,
    "start": "main",
    "identity": {"entry": "identify", "require_verification": False},
    "slots": {
        "service": {"entity": "service", "eager": True},
        "when": {"entity": "datetime", "eager": True},
        "order_number": {"entity": "order_number", "eager": False},
    },
    "global": [
        {"intent": "human_agent", "goto": "transfer", "min_confidence": 0.6},
        {"intent": "goodbye", "goto": "end", "min_confidence": 0.6, "except": ["anything_else"]},
    ],
    "routes": {
        "greeting": "main_again", "book_appointment": "book", "reschedule_appointment": "reschedule",
        "cancel_appointment": "cancel", "availability": "availability", "order_status": "orders",
        "knowledge_question": "knowledge", "human_agent": "transfer", "goodbye": "end", "affirm": "what_else", "deny": "anything_else",
    },
    "default_route": "knowledge",
    "fallback": "transfer",
    "steps": {
        "main": {"type": "route", "save_text_as": "request",
                 "reprompt": "Sorry, I didn't catch that. I can book, move or cancel appointments, check an order, or answer questions."},
        "main_again": {"type": "route", "save_text_as": "request", "prompt": "Hello! How can I help you today?"},
        "anything_else": {"type": "route", "prompt": "Is there anything else I can help you with?", "routes": {"deny": "done", "goodbye": "done", "affirm": "what_else"}},
        "what_else": {"type": "route", "prompt": "Sure, what else can I do for you?"},

        # Identity: the caller ID match, or name and ZIP code; new callers get a record.
        "identify": {"type": "branch", "next": [{"if": {"var": "customer.id", "set": True}, "goto": "identified"}, {"goto": "ask_name"}]},
        "ask_name": {"type": "ask", "slot": "name", "entity": "name", "prompt": "Sure. Can I have your full name, please?",
                     "reprompt": "Sorry, could you tell me your first and last name?", "next": "ask_postcode"},
        "ask_postcode": {"type": "ask", "slot": "postcode", "entity": "postcode", "prompt": "And your ZIP code?", "next": "lookup"},
        "lookup": {"type": "tool", "tool": "find_customer", "args": {"name": "{slots.name.full}", "postcode": "{slots.postcode}"},
                   "next": [{"if": {"var": "result.found", "eq": True}, "goto": "identified"}, {"goto": "create"}]},
        "create": {"type": "tool", "tool": "create_customer_account", "say_ok": "I've set you up as a new customer.",
                   "args": {"first_name": "{slots.name.first}", "last_name": "{slots.name.last}", "postcode": "{slots.postcode}", "status": "active"},
                   "next": [{"if": {"var": "result.ok", "eq": True}, "goto": "identified"}, {"goto": "identify_failed"}]},
        "identify_failed": {"type": "say", "say": "Sorry, I couldn't set up your record.", "clear_stack": True, "next": "transfer"},
        "identified": {"type": "return", "next": "anything_else"},

        # Booking.
        "book": {"type": "ask", "requires": "identified", "slot": "service", "entity": "service",
                 "prompt": "Which service would you like to book?", "reprompt": "Sorry, which service? For example a consultation or a repair visit.",
                 "next": "book_when"},
        "book_when": {"type": "ask", "slot": "when", "entity": "datetime", "prompt": "What day and time would suit you?",
                      "reprompt": "Which day? For example tomorrow at ten, or next Tuesday morning.", "next": "book_check"},
        "book_check": {"type": "tool", "tool": "check_availability",
                       "args": {"service": "{slots.service}", "date": "{slots.when.date}", "time": "{slots.when.time}"},
                       "say_error": "{result.message}", "next": [
                           {"if": {"var": "result.ok", "eq": False}, "goto": "book_again"},
                           {"if": {"var": "result.requested_available", "eq": True}, "goto": "book_confirm"},
                           {"if": {"var": "result.available", "eq": True}, "goto": "book_offer"},
                           {"goto": "book_none"}]},
        "book_confirm": {"type": "confirm", "prompt": "{result.service} on {result.requested_text} is free. Shall I book it?",
                         "yes": "book_take_requested", "no": "book_again"},
        "book_take_requested": {"type": "set", "slots": {"chosen": "{results.check_availability.requested}"}, "next": "book_create"},
        "book_offer": {"type": "ask", "slot": "chosen", "entity": "slot_choice", "always": True,
                       "prompt": "On {result.day_text} I can offer {result.slots_text}. Which would you like?",
                       "reprompt": "Which of those times would you like: {results.check_availability.slots_text}?",
                       "on_fail": "book_again", "next": "book_create"},
        "book_none": {"type": "say", "say": "Sorry, there's nothing free for {result.service} on {result.day_text}.", "next": "book_again"},
        "book_again": {"type": "ask", "slot": "when", "entity": "datetime", "always": True, "prompt": "What other day or time would work?",
                       "next": "book_check"},
        "book_create": {"type": "tool", "tool": "create_appointment", "args": {"service": "{slots.service}", "starts_at": "{slots.chosen}"},
                        "say_ok": "You're booked for a {result.service} on {result.starts_at_text}.", "say_error": "Sorry, {result.message}",
                        "next": [{"if": {"var": "result.ok", "eq": True}, "goto": "anything_else"}, {"goto": "book_again"}]},

        # Rescheduling and cancelling the next appointment.
        "reschedule": {"type": "tool", "tool": "get_appointments", "requires": "account",
                       "next": [{"if": {"var": "result.count", "gte": 1}, "goto": "reschedule_when"}, {"goto": "no_appointments"}]},
        "reschedule_when": {"type": "ask", "slot": "new_when", "entity": "datetime", "always": True,
                            "prompt": "Your {result.next.service} is on {result.next.starts_at_text}. When would you like to move it to?",
                            "next": "reschedule_check"},
        "reschedule_check": {"type": "tool", "tool": "check_availability", "say_error": "{result.message}", "args": {
            "service": "{results.get_appointments.next.service}", "date": "{slots.new_when.date}", "time": "{slots.new_when.time}"}, "next": [
            {"if": {"var": "result.requested_available", "eq": True}, "goto": "reschedule_take_requested"},
            {"if": {"var": "result.available", "eq": True}, "goto": "reschedule_offer"},
            {"goto": "reschedule_none"}]},
        "reschedule_take_requested": {"type": "set", "slots": {"chosen": "{results.check_availability.requested}"}, "next": "reschedule_do"},
        "reschedule_offer": {"type": "ask", "slot": "chosen", "entity": "slot_choice", "always": True,
                             "prompt": "On {result.day_text} I can offer {result.slots_text}. Which would you like?",
                             "on_fail": "anything_else", "next": "reschedule_do"},
        "reschedule_none": {"type": "say", "say": "Sorry, there's nothing free on {result.day_text}.", "next": "reschedule_again"},
        "reschedule_again": {"type": "ask", "slot": "new_when", "entity": "datetime", "always": True,
                             "prompt": "What other day would work?", "next": "reschedule_check"},
        "reschedule_do": {"type": "tool", "tool": "reschedule_appointment",
                          "args": {"appointment_id": "{results.get_appointments.next.id}", "starts_at": "{slots.chosen}"},
                          "say_ok": "Done. Your {result.service} is moved to {result.starts_at_text}.", "say_error": "Sorry, {result.message}",
                          "next": "anything_else"},
        "cancel": {"type": "tool", "tool": "get_appointments", "requires": "account",
                   "next": [{"if": {"var": "result.count", "gte": 1}, "goto": "cancel_confirm"}, {"goto": "no_appointments"}]},
        "cancel_confirm": {"type": "confirm", "prompt": "Shall I cancel your {result.next.service} on {result.next.starts_at_text}?",
                           "yes": "cancel_do", "no": "anything_else"},
        "cancel_do": {"type": "tool", "tool": "cancel_appointment", "args": {"appointment_id": "{results.get_appointments.next.id}"},
                      "say_ok": "Your {result.service} on {result.starts_at_text} is cancelled.", "say_error": "Sorry, {result.message}",
                      "next": "anything_else"},
        "no_appointments": {"type": "say", "say": "I can't see any upcoming appointments for you.", "next": "anything_else"},

        # Availability without booking yet.
        "availability": {"type": "ask", "slot": "service", "entity": "service", "prompt": "Which service are you asking about?",
                         "next": "availability_when"},
        "availability_when": {"type": "ask", "slot": "when", "entity": "datetime", "prompt": "For which day?", "next": "availability_check"},
        "availability_check": {"type": "tool", "tool": "check_availability", "say_error": "{result.message}",
                               "args": {"service": "{slots.service}", "date": "{slots.when.date}", "time": "{slots.when.time}", "limit": 3},
                               "next": [{"if": {"var": "result.available", "eq": True}, "goto": "availability_say"}, {"goto": "book_none"}]},
        "availability_say": {"type": "confirm", "prompt": "On {result.day_text} I have {result.slots_text} free for {result.service}. Would you like to book one?",
                             "yes": "availability_book", "no": "anything_else"},
        "availability_book": {"type": "ask", "requires": "identified", "slot": "chosen", "entity": "slot_choice", "always": True,
                              "prompt": "Which time would you like: {results.check_availability.slots_text}?", "on_fail": "anything_else",
                              "next": "book_create"},

        # Orders and questions.
        "orders": {"type": "tool", "tool": "get_orders", "requires": "account", "args": {"order_number": "{slots.order_number}"},
                   "next": [{"if": {"var": "result.count", "gte": 1}, "goto": "orders_say"}, {"goto": "no_orders"}]},
        "orders_say": {"type": "say", "say": "Your {result.latest.text}.", "next": "anything_else"},
        "no_orders": {"type": "say", "say": "I can't find any orders for you.", "next": "anything_else"},
        "knowledge": {"type": "knowledge", "query": "{text}", "next": "anything_else", "on_miss": "anything_else",
                      "say_miss": "I'm sorry, I don't know the answer to that. I can have someone from the office call you back."},
        "transfer": {"type": "transfer", "reason": "caller_request", "say_ok": "Let me put you through.",
                     "say_error": "I'm sorry, I can't transfer calls from this line, but the office is open weekdays nine to five.",
                     "on_fail": "anything_else"},
        **_END_STEPS,
    },
}

DEFAULT_FLOWS = {
    "customer_service": CUSTOMER_SERVICE,
    "driver_check_in": DRIVER_CHECK_IN,
    "lead_qualification": LEAD_QUALIFICATION,
    "reception": RECEPTION,
}


def default_flow(scenario: str) -> dict:
    """A fresh copy of the built-in flow for `scenario`."""
    return copy.deepcopy(DEFAULT_FLOWS[scenario])


def flow_for(agent) -> dict:
    """The agent's own flow, or the built-in one for its scenario when it has none."""
    flow = agent.flow or {}
    if flow.get("steps"):
        return flow
    return DEFAULT_FLOWS.get(agent.scenario, CUSTOMER_SERVICE)
