"""Scripted conversations: a YAML format, a runner over the text channel, and the export of a real call as one.

Each scenario pack keeps its conversations in agents/scenarios/<slug>/conversations/*.yaml
(`pack_conversations()`); any other file or folder runs too. A conversation is played through
a text session (telephony.chat.session), as a chat caller would, and checked turn by turn.
A conversation file holds one conversation, or several as YAML documents separated by `---`:

    name: Balance for a verified caller
    agent: support                  # an AgentConfig slug; created from the scenario pack of that name when missing
    caller_number: "+14155559001"   # optional caller ID
    setup:                          # rows created for this conversation only (rolled back after)
      customers: [{account_number: "70001", first_name: Ada, last_name: Lovelace, date_of_birth: 1985-05-05}]
    turns:
      - agent: {says: "How can I help"}          # expectations on the greeting
      - caller: what's my balance
        expect: {intent: billing_balance, says: account number, tools: []}
      - dtmf: "70001"
        expect: {tools: [find_customer]}
    expect:                         # database effects at the end
      tickets: [{category: account, priority: high}]

Expectations on a reply: says / says_not (substrings, case-insensitive; a string or a list),
matches (a regular expression), similar (fuzzy match of the whole reply, for exported calls),
intent, tools (names called this turn, in any order; [] for none), tool_ok ({name: bool}),
action, reason, customer (account number of the identified customer).
Database expectations: tickets, appointments, information, customers, orders (each a list of
field filters that must each match a row made or changed by the conversation), *_count, and
call (fields of the Call row). See docs/flows.md for examples.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.contrib import admin
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from rapidfuzz import fuzz

from agents.deterministic import DeterministicEngine
from agents.engine import DialogEngine, DialogReply
from agents.models import AgentConfig, KnowledgeEntry
from agents.scenarios import ScenarioError, scenario_get, scenario_list
from calls.models import Call, CallEvent, InformationRecord
from customers.models import Appointment, Customer, OpeningHours, Order, Service
from telephony.chat.session import text_session_open
from tickets.models import Ticket


class ConversationError(Exception):
    """The file itself is wrong (not a failed expectation)."""


@dataclass
class ConversationResult:
    name: str
    source: str
    passed: bool
    turns: int = 0
    failures: list[str] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


def conversations_in(path: str | Path) -> list[tuple[str, dict]]:
    """(source, conversation) for every conversation in a file, or in the *.yaml files of a directory."""
    path = Path(path)
    files = sorted(path.rglob("*.yaml")) + sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    found = []
    for file in files:
        try:
            documents = [d for d in yaml.safe_load_all(file.read_text()) if d]
        except yaml.YAMLError as exc:
            raise ConversationError(f"{file}: not valid YAML: {exc}") from None
        for n, document in enumerate(documents):
            if not isinstance(document, dict) or "turns" not in document:
                raise ConversationError(f"{file} (document {n + 1}): a conversation needs \"turns\"")
            found.append((f"{file}" + (f"#{n + 1}" if len(documents) > 1 else ""), document))
    return found


def pack_conversations(slugs: list[str] | None = None) -> list[tuple[str, dict]]:
    """The conversations shipped with the scenario packs (all, or the packs named in `slugs`)."""
    packs = [scenario_get(slug) for slug in slugs] if slugs else scenario_list()
    found = []
    for pack in packs:
        if pack.conversations_dir.is_dir():
            found += conversations_in(pack.conversations_dir)
    return found


# --- setup ------------------------------------------------------------------------------------------

def _agent(slug: str) -> AgentConfig:
    agent = AgentConfig.objects.filter(slug=slug).first()
    if agent is not None:
        return agent
    try:
        pack = scenario_get(slug)
    except ScenarioError:
        raise ConversationError(f"no agent {slug!r}, and no scenario pack of that name") from None
    return AgentConfig.objects.create(**pack.agent_fields())


def _local_datetime(in_days: int, at: str) -> dt.datetime:
    hour, minute = (int(x) for x in str(at).split(":"))
    day = timezone.localdate() + dt.timedelta(days=int(in_days))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


def _setup(setup: dict) -> None:
    for row in setup.get("customers", []):
        row = dict(row)
        account = str(row.pop("account_number"))
        for key in ("balance",):
            if key in row:
                row[key] = Decimal(str(row[key]))
        if "date_of_birth" in row and isinstance(row["date_of_birth"], str):
            row["date_of_birth"] = dt.date.fromisoformat(row["date_of_birth"])
        customer, _ = Customer.objects.update_or_create(account_number=account, defaults=row)
        customer.full_clean()
    for row in setup.get("services", []):
        row = dict(row)
        days = row.pop("days", list(range(7)))
        opens, closes = str(row.pop("hours", "09:00-17:00")).split("-")
        service, _ = Service.objects.update_or_create(slug=row.pop("slug"), defaults={"active": True, **row})
        service.opening_hours.all().delete()
        for day in days:
            OpeningHours.objects.create(service=service, weekday=day, opens=dt.time.fromisoformat(opens), closes=dt.time.fromisoformat(closes))
    for row in setup.get("appointments", []):
        service = Service.objects.get(slug=row["service"])
        starts_at = _local_datetime(row.get("in_days", 1), row.get("at", "10:00"))
        Appointment.objects.create(customer=Customer.objects.get(account_number=str(row["customer"])), service=service,
                                   starts_at=starts_at, ends_at=starts_at + service.duration, status=row.get("status", "booked"))
    for row in setup.get("orders", []):
        row = dict(row)
        row["customer"] = Customer.objects.get(account_number=str(row["customer"]))
        row["total"] = Decimal(str(row.get("total", "0")))
        Order.objects.update_or_create(number=row.pop("number"), defaults=row)
    for row in setup.get("knowledge", []):
        KnowledgeEntry.objects.update_or_create(title=row["title"], defaults={"answer": row["answer"], "tags": row.get("tags", ""), "active": True})
    for row in setup.get("tickets", []):
        row = dict(row)
        if "customer" in row:
            row["customer"] = Customer.objects.get(account_number=str(row["customer"]))
        Ticket.objects.create(**row)


# --- expectations -------------------------------------------------------------------------------

def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def check_reply(expect: dict, reply: DialogReply, *, customer_account: str | None) -> list[str]:
    """Failed expectations on one reply, as messages."""
    failures = []
    text = reply.text
    low = text.lower()
    for wanted in _as_list(expect.get("says", [])):
        if str(wanted).lower() not in low:
            failures.append(f"reply should contain {wanted!r}")
    for unwanted in _as_list(expect.get("says_not", [])):
        if str(unwanted).lower() in low:
            failures.append(f"reply should not contain {unwanted!r}")
    if "matches" in expect and not re.search(expect["matches"], text, re.I | re.S):
        failures.append(f"reply should match /{expect['matches']}/")
    if "similar" in expect:
        score = fuzz.token_set_ratio(expect["similar"].lower(), low)
        if score < expect.get("similarity", 80):
            failures.append(f"reply should be like {expect['similar']!r} (similarity {score:.0f})")
    if "intent" in expect and reply.intent not in _as_list(expect["intent"]):
        failures.append(f"intent should be {expect['intent']!r}, was {reply.intent!r}")
    called = [c.name for c in reply.tool_calls]
    if "tools" in expect:
        wanted = _as_list(expect["tools"] or [])
        if not wanted and called:
            failures.append(f"no tools should be called, but {called} were")
        for name in wanted:
            if name not in called:
                failures.append(f"tool {name} should be called (called: {called or 'none'})")
    for name, ok in (expect.get("tool_ok") or {}).items():
        calls = [c for c in reply.tool_calls if c.name == name]
        if not calls or calls[-1].ok != ok:
            failures.append(f"tool {name} should {'succeed' if ok else 'fail'} ({calls[-1].result if calls else 'not called'})")
    if "action" in expect and reply.action != expect["action"]:
        failures.append(f"action should be {expect['action']!r}, was {reply.action!r}")
    if "reason" in expect and reply.action_reason != expect["reason"]:
        failures.append(f"action reason should be {expect['reason']!r}, was {reply.action_reason!r}")
    if "customer" in expect and (customer_account or None) != (str(expect["customer"]) if expect["customer"] else None):
        failures.append(f"identified customer should be {expect['customer']!r}, was {customer_account!r}")
    return failures


def _row_matches(row: Any, filters: dict) -> bool:
    for key, wanted in filters.items():
        value = row
        for part in key.split("__"):
            value = getattr(value, part, None) if value is not None else None
        if key == "customer" and value is not None:
            value = value.account_number
        if isinstance(wanted, str) and isinstance(value, str):
            if wanted.lower() != value.lower() and not (wanted.startswith("~") and wanted[1:].lower() in value.lower()):
                return False
        elif isinstance(value, Decimal):
            if value != Decimal(str(wanted)):
                return False
        elif value != wanted and str(value) != str(wanted):
            return False
    return True


def check_database(expect: dict, *, call, since: dt.datetime) -> list[str]:
    tables = {
        "tickets": Ticket.objects.filter(created_at__gte=since),
        "appointments": Appointment.objects.filter(updated_at__gte=since).select_related("service", "customer"),
        "information": InformationRecord.objects.filter(call=call),
        "customers": Customer.objects.filter(created_at__gte=since),
        "orders": Order.objects.filter(customer__calls=call),
    }
    failures = []
    for name, qs in tables.items():
        rows = list(qs)
        if f"{name}_count" in expect and len(rows) != expect[f"{name}_count"]:
            failures.append(f"{name}: expected {expect[f'{name}_count']} rows, found {len(rows)}")
        for filters in expect.get(name, []):
            if name == "appointments" and "service" in filters:
                filters = {("service__slug" if k == "service" else k): v for k, v in filters.items()}
            if not any(_row_matches(row, filters) for row in rows):
                failures.append(f"{name}: no row matches {filters}")
    if "call" in expect:
        call.refresh_from_db()
        if not _row_matches(call, expect["call"]):
            failures.append(f"call does not match {expect['call']}")
    return failures


# --- running ------------------------------------------------------------------------------------

def run_conversation(conversation: dict, *, source: str = "", engine: DialogEngine | None = None,
                     rollback: bool = True) -> ConversationResult:
    """Play one conversation through a text session, inside a transaction that is rolled back.

    With `rollback=False` (benchmarks on a throwaway database) every write commits as it would
    on a live chat, and the rows stay.
    """
    engine = engine or DeterministicEngine()
    result = ConversationResult(name=str(conversation.get("name", source)), source=source, passed=False)
    turns = conversation.get("turns") or []
    try:
        with transaction.atomic() if rollback else contextlib.nullcontext():
            since = timezone.now()
            agent = _agent(conversation.get("agent", "support"))
            _setup(conversation.get("setup") or {})
            session = text_session_open(agent_slug=agent.slug, caller_number=str(conversation.get("caller_number", "")),
                                        engine=engine)
            if session is None:
                raise ConversationError(f"agent {agent.slug!r} is not active")
            ctx = session.ctx

            def account() -> str | None:
                if not ctx.customer_id:
                    return None
                return Customer.objects.filter(pk=ctx.customer_id).values_list("account_number", flat=True).first()

            started = time.perf_counter()
            reply = session.start()
            result.reply_ms.append((time.perf_counter() - started) * 1000)
            result.transcript.append(("agent", reply.text))
            for number, turn in enumerate(turns, start=1):
                if not isinstance(turn, dict):
                    raise ConversationError(f"turn {number} must be a mapping")
                if "agent" in turn and "caller" not in turn and "dtmf" not in turn:
                    expect = turn["agent"] or {}
                else:
                    if session.ended:
                        result.failures.append(f"turn {number}: the agent already ended the call ({reply.action})")
                        break
                    text = turn.get("caller")
                    # YAML reads a bare yes/no as a boolean.
                    text = "" if text is None else ({True: "yes", False: "no"}[text] if isinstance(text, bool) else str(text))
                    if "repeat" in turn:
                        text = text * int(turn["repeat"])
                    dtmf = str(turn["dtmf"]) if "dtmf" in turn else None
                    started = time.perf_counter()
                    reply = session.respond(text=text if "caller" in turn else None, dtmf=dtmf)
                    result.reply_ms.append((time.perf_counter() - started) * 1000)
                    result.turns += 1
                    result.transcript += [("caller", (text or f"[dtmf {dtmf}]")[:200]), ("agent", reply.text)]
                    expect = turn.get("expect") or {}
                for failure in check_reply(expect, reply, customer_account=account()):
                    result.failures.append(f"turn {number}: {failure}")
            result.failures += check_database(conversation.get("expect") or {}, call=Call.objects.get(pk=session.call_id),
                                              since=since)
            if rollback:
                transaction.set_rollback(True)
    except ConversationError as exc:
        result.failures.append(str(exc))
    result.passed = not result.failures
    return result


def run_path(path: str | Path, *, engine: DialogEngine | None = None) -> list[ConversationResult]:
    return [run_conversation(c, source=source, engine=engine) for source, c in conversations_in(path)]


def results_table(results: list[ConversationResult]) -> str:
    """A plain-text pass/fail table, one line per conversation, failures indented below."""
    width = max([len(r.name) for r in results] + [12])
    lines = [f"{'conversation':<{width}}  result  turns  p50 ms", f"{'-' * width}  ------  -----  ------"]
    for r in results:
        ms = sorted(r.reply_ms)
        p50 = ms[len(ms) // 2] if ms else 0.0
        lines.append(f"{r.name:<{width}}  {r.status:<6}  {r.turns:>5}  {p50:>6.1f}")
        for failure in r.failures:
            lines.append(f"{'':<{width}}    - {failure}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


# --- export -------------------------------------------------------------------------------------

def conversation_from_call(call) -> dict:
    """A regression test from a real call: the caller's turns, the agent's replies as `similar`
    expectations, the tools each reply called, and the customer the call was about."""
    turns_qs = list(call.turns.order_by("index"))
    events = list(call.events.filter(kind=CallEvent.Kind.TOOL_CALL).order_by("created_at", "id"))
    conversation: dict[str, Any] = {
        "name": f"Call {str(call.public_id)[:8]} on {timezone.localtime(call.started_at):%Y-%m-%d %H:%M}",
        "agent": call.agent.slug if call.agent else "support",
    }
    if call.from_number:
        conversation["caller_number"] = call.from_number
    if call.customer is not None:
        c = call.customer
        conversation["setup"] = {"customers": [{
            "account_number": c.account_number, "first_name": c.first_name, "last_name": c.last_name,
            **({"phone": c.phone} if c.phone else {}), "balance": str(c.balance), "postcode": c.postcode,
            **({"date_of_birth": c.date_of_birth.isoformat()} if c.date_of_birth else {}),
        }]}
    turns: list[dict] = []
    previous_at = None
    for turn in turns_qs:
        if turn.speaker == "caller":
            turns.append({"caller": turn.text})
        elif turn.speaker == "agent":
            spoken = turn.heard_text or turn.text
            expect: dict[str, Any] = {"similar": spoken} if spoken else {}
            if turn.intent:
                expect["intent"] = turn.intent
            if turns and "caller" in turns[-1]:
                # The tools this reply called were logged between the caller's turn and it.
                tools = sorted({e.name for e in events if previous_at is not None and previous_at <= e.created_at <= turn.created_at})
                if tools:
                    expect["tools"] = tools
                turns[-1]["expect"] = expect
            else:
                turns.append({"agent": expect})
        previous_at = turn.created_at
    conversation["turns"] = turns
    return conversation


def conversation_yaml(conversations: list[dict]) -> str:
    return yaml.safe_dump_all(conversations, sort_keys=False, allow_unicode=True, width=120)


@admin.action(description="Make a regression test from this call")
def make_regression_test(modeladmin, request, queryset):
    """Download the selected calls as YAML conversations (one document each) for
    `manage.py test_conversations` and a scenario pack's conversations/ folder."""
    calls = list(queryset.select_related("agent", "customer").order_by("started_at")[:50])
    body = "# Exported from VoiceCRM; review the expectations before adding this to the test suite.\n"
    body += conversation_yaml([conversation_from_call(call) for call in calls])
    response = HttpResponse(body, content_type="application/x-yaml; charset=utf-8")
    name = f"call-{str(calls[0].public_id)[:8]}" if len(calls) == 1 else f"calls-{timezone.now():%Y%m%d-%H%M%S}"
    response["Content-Disposition"] = f'attachment; filename="{name}.yaml"'
    return response
