"""Who may chat with an agent in the staff text chat (agents/views.py, telephony/chat).

In the chat a staff member plays the caller, and the agent's tools then read and write CRM
records on their behalf. So the rule is: `agents.chat_with_agent`, plus, for every tool the
agent has enabled, the model permissions of the records that tool reads (view_), creates
(add_) or changes (change_). The call itself (its turns, events and what was shared) comes
with chat_with_agent. Posing as a caller number (`?caller=`, which may identify or even
verify a customer by caller ID) needs `agents.chat_as_caller`, which only Supervisors hold.
The permissions are created and given to the roles in core/roles.py.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from agents.models import AgentConfig

CHAT_PERMISSION = "agents.chat_with_agent"
CHAT_AS_CALLER_PERMISSION = "agents.chat_as_caller"

# Every tool in agents.tools.REGISTRY (a test keeps the two in step). A tool missing here is
# refused to everyone but superusers.
TOOL_PERMISSIONS: dict[str, frozenset[str]] = {
    "find_customer": frozenset({"customers.view_customer"}),
    # A locked verification opens a ticket for a person to follow up.
    "verify_customer": frozenset({"customers.view_customer", "tickets.add_ticket"}),
    "create_customer_account": frozenset({"customers.add_customer"}),
    "get_account_summary": frozenset({"customers.view_customer", "customers.view_appointment", "tickets.view_ticket"}),
    "get_appointments": frozenset({"customers.view_appointment"}),
    "check_availability": frozenset({"customers.view_service"}),
    "create_appointment": frozenset({"customers.add_appointment"}),
    "reschedule_appointment": frozenset({"customers.change_appointment"}),
    "cancel_appointment": frozenset({"customers.change_appointment"}),
    "get_orders": frozenset({"customers.view_order"}),
    "create_ticket": frozenset({"tickets.add_ticket"}),
    "search_knowledge_base": frozenset({"agents.view_knowledgeentry"}),
    "share_information": frozenset(),
    "transfer_to_human": frozenset(),
    "end_call": frozenset(),
}


def agent_chat_permissions(*, agent: AgentConfig) -> set[str]:
    """Every permission a user needs to chat with `agent`."""
    needed = {CHAT_PERMISSION}
    for name in agent.enabled_tools or []:
        needed |= TOOL_PERMISSIONS.get(name, {f"agents.use_tool_{name}"})
    return needed


def agent_chat_missing_permissions(*, user: AbstractBaseUser | AnonymousUser, agent: AgentConfig) -> list[str]:
    """The permissions `user` lacks to chat with `agent`; empty when they may."""
    return sorted(perm for perm in agent_chat_permissions(agent=agent) if not user.has_perm(perm))


def agent_chat_as_caller_allowed(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.has_perm(CHAT_AS_CALLER_PERMISSION)
