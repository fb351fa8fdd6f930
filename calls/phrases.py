"""What a voice session may say without the dialog: its own prompts, and each agent's greeting and
closing. These are the phrases synthesized ahead of calls (calls/postcall/phrases.py) and kept in
the session's phrase cache."""

from __future__ import annotations

from agents.models import AgentConfig
from core.text import split_sentences

FILLERS = ("One moment.", "Let me check that.")
REPROMPT = "Are you still there?"
SILENCE_GOODBYE = "I can't hear anything, so I'll end the call now. Goodbye."
TIME_LIMIT_GOODBYE = "I'm sorry, we've reached the time limit for this call. Goodbye."
APOLOGY = "Sorry, I'm having trouble right now. Could you say that again?"


def fixed_phrases(agent: AgentConfig) -> list[str]:
    """Sentences the session may speak without the dialog: greeting, closing and its own prompts."""
    phrases = [*split_sentences(agent.greeting), *split_sentences(agent.closing)]
    for phrase in (*FILLERS, REPROMPT, SILENCE_GOODBYE, TIME_LIMIT_GOODBYE, APOLOGY):
        phrases += split_sentences(phrase)
    return list(dict.fromkeys(phrases))
