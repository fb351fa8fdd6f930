"""Stored agents verify callers before account tools (docs/security.md, "The agent is a public API").

The reception flow used to ship with `"require_verification": false`: a caller who gave a name
and ZIP code could cancel someone else's appointment and hear their orders. Every stored flow
that turned verification off for account tools gets it back on; an agent with account tools
gets `verify_customer`; a stored copy of the shipped reception flow gets its date-of-birth steps
(frozen here as shipped with this change), and a stored copy of the support flow stops saying
the first name before verification. Other stored flows are left as their supervisors wrote them.
Running it twice changes nothing.
"""

from typing import Any

import yaml
from django.db import migrations

# Tools that read or change a customer's account, as of this change.
ACCOUNT_TOOLS = {"get_account_summary", "get_appointments", "create_appointment", "reschedule_appointment",
                 "cancel_appointment", "get_orders"}

RECEPTION_IDENTITY = {"entry": "identify", "locked": "locked_again", "max_attempts": 3}
RECEPTION_STEPS = yaml.safe_load("""
identify:
  type: branch
  next:
  - if: {var: identity.locked, eq: true}
    goto: locked_again
  - if: {var: identity.verified, eq: true}
    goto: identified
  - if: {var: customer.id, set: true}
    goto: ask_dob
  - {goto: ask_name}
lookup:
  type: tool
  tool: find_customer
  args: {name: '{slots.name.full}', postcode: '{slots.postcode}'}
  next:
  - if: {var: result.found, eq: true}
    goto: ask_dob
  - {goto: create}
create:
  type: tool
  tool: create_customer_account
  args:
    first_name: '{slots.name.first}'
    last_name: '{slots.name.last}'
    postcode: '{slots.postcode}'
    status: active
  next:
  - if: {var: result.created, eq: true}
    goto: created
  - if: {var: result.ok, eq: true}
    goto: ask_dob
  - {goto: identify_failed}
created:
  type: say
  say: I've set you up as a new customer.
  next: identified
ask_dob:
  type: ask
  slot: date_of_birth
  entity: date_of_birth
  prompt: For security, can you tell me your date of birth?
  reprompt: Please tell me your date of birth, for example the fifth of May nineteen eighty.
  on_fail: not_verified
  next: verify
verify:
  type: tool
  tool: verify_customer
  args: {date_of_birth: '{slots.date_of_birth}'}
  next:
  - if: {var: result.verified, eq: true}
    goto: verified
  - if: {var: result.ticket, set: true}
    goto: locked
  - if: {var: result.locked, eq: true}
    goto: locked_again
  - {goto: verify_retry}
verify_retry:
  type: set
  say: Sorry, that doesn't match our records.
  clear: [date_of_birth]
  next: ask_dob_again
ask_dob_again:
  type: ask
  slot: date_of_birth
  entity: date_of_birth
  prompt: Could you tell me your date of birth again?
  on_fail: not_verified
  next: verify
verified:
  type: return
  say: Thank you, you're verified.
  next: anything_else
not_verified:
  type: say
  clear_stack: true
  say: I'm sorry, I can't change or read appointments or orders until I've verified who you are.
  next: anything_else
locked:
  type: say
  clear_stack: true
  say: I'm sorry, I can't verify your identity, so I can't help with appointments or orders on this call. I've opened
    ticket {identity.ticket:spell} and the office will contact the account holder.
  next: anything_else
locked_again:
  type: say
  clear_stack: true
  say: I'm sorry, I can't help with appointments or orders right now because verification is locked for this account.
  next: anything_else
""")
# The shipped reception flow's identity steps before this change: how a stored copy is recognised.
OLD_RECEPTION_STEP_NAMES = {"identify", "ask_name", "ask_postcode", "lookup", "create", "identify_failed", "identified"}
OLD_SUPPORT_DOB_PROMPT = "Thanks {customer.first_name}. For security, can you tell me your date of birth?"


def flow_upgrade(flow: Any, enabled_tools: list) -> Any:
    if not isinstance(flow, dict) or not isinstance(flow.get("steps"), dict):
        return flow
    flow = {**flow, "steps": dict(flow["steps"])}
    steps = flow["steps"]
    identity = dict(flow.get("identity") or {})
    guarded = ACCOUNT_TOOLS & set(enabled_tools or [])
    if identity.get("require_verification") is False and guarded:
        identity.pop("require_verification")
        if OLD_RECEPTION_STEP_NAMES <= set(steps) and "verify" not in steps:
            steps.update(yaml.safe_load(yaml.safe_dump(RECEPTION_STEPS)))
            identity = {**RECEPTION_IDENTITY, **identity}
            for name in ("book", "availability_book"):
                if isinstance(steps.get(name), dict) and steps[name].get("requires") == "identified":
                    steps[name] = {**steps[name], "requires": "verified"}
        flow["identity"] = identity
    dob = steps.get("ask_dob")
    if isinstance(dob, dict) and dob.get("prompt") == OLD_SUPPORT_DOB_PROMPT:
        steps["ask_dob"] = {**dob, "prompt": "Thanks. For security, can you tell me your date of birth?"}
    return flow


def agents_verify_callers(apps, schema_editor) -> None:
    AgentConfig = apps.get_model("agents", "AgentConfig")
    for agent in AgentConfig.objects.only("pk", "flow", "enabled_tools").iterator():
        tools = list(agent.enabled_tools or [])
        flow = flow_upgrade(agent.flow, tools)
        if ACCOUNT_TOOLS & set(tools) and "verify_customer" not in tools:
            tools.insert(tools.index("find_customer") + 1 if "find_customer" in tools else 0, "verify_customer")
        if flow != agent.flow or tools != agent.enabled_tools:
            # update(), not save(): a data fix is not a supervisor's edit, so the version stays.
            AgentConfig.objects.filter(pk=agent.pk).update(flow=flow, enabled_tools=tools)


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0004_agentconfig_trust_caller_id"),
    ]

    operations = [
        migrations.RunPython(agents_verify_callers, migrations.RunPython.noop),
    ]
