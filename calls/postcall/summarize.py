"""Stage 2: one to three sentences, an outcome and a sentiment.

Deterministic by default: who called and why, the caller's main point in their own words,
and what came of it (from the call's own rows: tickets, bookings, transfers). With
LLM_BASE_URL set, the LLM writes them and this is the fallback.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.utils import timezone

from calls.models import Call, CallEvent
from calls.postcall.conversation import Conversation, caller_intent
from calls.postcall.llm import llm_json
from customers.models import Appointment
from tickets.models import Ticket

logger = logging.getLogger(__name__)

OUTCOMES = ("transferred", "ticket_created", "appointment_booked", "escalated", "resolved", "unresolved",
            "abandoned", "no_conversation", "voicemail", "not_reached")
# How an outbound call that reached nobody ended, as the status the phone network reported.
_NOT_REACHED = {Call.Status.BUSY: "The line was busy.", Call.Status.NO_ANSWER: "Nobody answered.",
                Call.Status.FAILED: "The call could not be placed.", Call.Status.CANCELED: "The call was canceled."}

_POSITIVE = {
    "thanks", "thank", "great", "perfect", "appreciate", "appreciated", "helpful", "awesome", "excellent",
    "wonderful", "happy", "glad", "good", "lovely", "fantastic", "brilliant", "amazing", "pleased",
}
_NEGATIVE = {
    "angry", "annoyed", "frustrated", "frustrating", "terrible", "awful", "horrible", "ridiculous", "unacceptable",
    "disappointed", "disappointing", "upset", "worst", "useless", "complaint", "complain", "hate", "furious",
    "again", "missed", "never", "waste", "rude", "broken", "problem", "problems", "issue", "accident", "hurt",
    "injured", "late", "delayed", "stuck", "cancel",
}
_NEGATORS = {"not", "no", "never", "don't", "didn't", "isn't", "wasn't", "aren't", "can't", "won't", "nothing"}
# Yes/no answers, greetings and sign-offs say nothing about why the caller called.
_SMALL_TALK = re.compile(
    r"^(?:yes|yeah|yep|no|nope|ok|okay|sure|thanks|thank you|hi|hello|hey|bye|goodbye|that's all|that is all)\b[\s,.!]*"
    r"(?:please|thanks|thank you|bye|goodbye)?[\s.!]*$", re.I,
)


_STRONG_NEGATIVE = {"complaint", "complain", "ridiculous", "unacceptable", "furious", "angry", "worst", "terrible",
                    "awful", "horrible", "hate", "useless", "disgusting"}
_POLITE = {"thanks", "thank"}


def sentiment_of(text: str) -> str:
    """The caller's sentiment from a small lexicon with negation; "thanks" is politeness, so it
    counts once at most, and strong complaints count double."""
    words = re.findall(r"[a-z']+", text.lower())
    score = 0
    polite = 0
    for i, word in enumerate(words):
        sign = 1 if word in _POSITIVE else -1 if word in _NEGATIVE else 0
        if sign and any(w in _NEGATORS for w in words[max(0, i - 3):i]):
            sign = -sign if sign > 0 else 0  # "not happy" is negative; "no problem" is not a problem
        if word in _POLITE and sign > 0:
            polite += 1
            sign = 1 if polite == 1 else 0
        elif word in _STRONG_NEGATIVE and sign < 0:
            sign = -2
        score += sign
    if score >= 2:
        return Call.Sentiment.POSITIVE
    if score <= -2:
        return Call.Sentiment.NEGATIVE
    return Call.Sentiment.NEUTRAL


def outcome_of(call: Call, conversation: Conversation) -> tuple[str, str]:
    """(outcome, a sentence saying it)."""
    # Facts of the call come first: what was (not) said cannot change them.
    if call.end_reason == "voicemail" or call.answered_by.startswith("machine"):
        return "voicemail", "The call reached voicemail; the agent left its message."
    if call.answered_at is None and call.status in _NOT_REACHED:
        return "not_reached", _NOT_REACHED[call.status]
    caller_turns = [u for u in conversation.turns() if u.speaker in ("caller", "mixed")]
    if not caller_turns:
        return "no_conversation", "Nobody spoke on the call."
    kinds = set(CallEvent.objects.filter(call=call).values_list("kind", flat=True))
    if call.end_reason == "transfer" or CallEvent.Kind.TRANSFER in kinds:
        return "transferred", "The call was transferred to a person."
    ticket = Ticket.objects.filter(call=call).order_by("created_at").first()
    if ticket is not None:
        return "ticket_created", f"Ticket {ticket.reference} was opened."
    appointment = Appointment.objects.filter(source_call=call).order_by("-created_at").first()
    if appointment is not None:
        when = timezone.localtime(appointment.starts_at)
        return "appointment_booked", f"An appointment was booked for {when:%A %d %B at %H:%M}."
    if CallEvent.Kind.ESCALATION in kinds:
        return "escalated", "The call was escalated to a supervisor."
    if call.end_reason == "caller_hangup" and len(caller_turns) < 2:
        return "abandoned", "The caller hung up before the request was handled."
    last = caller_turns[-1].text.lower()
    if re.search(r"\b(?:thanks|thank you|that's all|that is all|perfect|great|bye|goodbye)\b", last) or call.end_reason in (
        "agent_end", "end_call", "completed"
    ):
        return "resolved", "The agent handled the request on the call."
    return "unresolved", "The request was not resolved on the call."


def _who(call: Call) -> str:
    if call.customer_id and call.customer.full_name:
        return call.customer.full_name
    return call.from_number or "an unknown caller"


def _main_point(conversation: Conversation) -> str | None:
    for turn in conversation.turns():
        if turn.speaker not in ("caller", "mixed"):
            continue
        text = turn.text.strip()
        if len(text.split()) < 4 or _SMALL_TALK.match(text):
            continue
        words = text.split()
        quote = " ".join(words[:30]) + ("…" if len(words) > 30 else "")
        return f"They said: “{quote}”"
    return None


def summarize_deterministic(call: Call, conversation: Conversation) -> dict:
    outcome, outcome_sentence = outcome_of(call, conversation)
    intent = call.intent or caller_intent(conversation)
    line = call.agent.name if call.agent_id else f"{call.get_channel_display()}"
    about = f" about {intent.replace('_', ' ')}" if intent else ""
    sentences = [f"{line} call from {_who(call)}{about}."]
    point = _main_point(conversation)
    if point:
        sentences.append(point)
    sentences.append(outcome_sentence)
    caller_text = conversation.text_of("caller") or conversation.text_of("mixed")
    return {"summary": " ".join(sentences[:3]), "outcome": outcome, "sentiment": sentiment_of(caller_text)}


def summarize_with_llm(call: Call, conversation: Conversation) -> dict:
    system = (
        "Summarize this phone call for a CRM. Answer with a JSON object: "
        '{"summary": "one to three sentences", "outcome": one of ' + ", ".join(OUTCOMES)
        + ', "sentiment": "positive" | "neutral" | "negative" (the caller\'s)}.'
    )
    result = llm_json(system=system, user=conversation.as_text())
    summary = str(result.get("summary", "")).strip()
    sentiment = str(result.get("sentiment", "")).lower()
    outcome = str(result.get("outcome", "")).lower()
    fact = outcome_of(call, conversation)[0]
    if fact in ("voicemail", "not_reached"):
        outcome = fact  # an LLM's reading of the words cannot overrule the phone network
    if not summary or sentiment not in Call.Sentiment.values:
        raise ValueError(f"LLM summary is incomplete: {result!r}")
    return {"summary": summary, "outcome": outcome if outcome in OUTCOMES else outcome_of(call, conversation)[0],
            "sentiment": sentiment}


def call_summarize(*, call: Call, conversation: Conversation) -> dict:
    method = "deterministic"
    result = None
    if settings.LLM_BASE_URL and not conversation.is_empty:
        try:
            result, method = summarize_with_llm(call, conversation), "llm"
        except Exception as exc:
            logger.warning("LLM summary failed for call %s, using the deterministic one: %s", call.pk, exc)
    if result is None:
        result = summarize_deterministic(call, conversation)
    call.summary, call.outcome, call.sentiment = result["summary"], result["outcome"][:64], result["sentiment"]
    call.save(update_fields=["summary", "outcome", "sentiment", "updated_at"])
    return {"method": method, "source": conversation.source, "outcome": call.outcome, "sentiment": call.sentiment}
