"""The conversation a stage reads: the post-call transcript when there is one, else the live turns."""

from __future__ import annotations

from dataclasses import dataclass

from agents.nlu.intents import UNKNOWN, recognize_intent
from agents.nlu.lexicon import CONVERSATIONAL
from calls.models import Call, CallTranscript, Turn


@dataclass(frozen=True)
class Utterance:
    speaker: str  # "caller", "agent" or "mixed" (a mono recording)
    text: str
    start: float | None = None  # seconds from the start of the call


@dataclass(frozen=True)
class Conversation:
    utterances: list[Utterance]
    source: str  # "recording" or "live"

    def turns(self) -> list[Utterance]:
        """Adjacent utterances of one speaker joined: a pause mid-sentence is not a new turn."""
        merged: list[Utterance] = []
        for u in self.utterances:
            if merged and merged[-1].speaker == u.speaker:
                last = merged[-1]
                merged[-1] = Utterance(u.speaker, f"{last.text} {u.text}".strip(), last.start)
            else:
                merged.append(u)
        return merged

    def text_of(self, speaker: str) -> str:
        return " ".join(u.text for u in self.utterances if u.speaker == speaker)

    @property
    def is_empty(self) -> bool:
        return not any(u.text.strip() for u in self.utterances)

    def as_text(self) -> str:
        return "\n".join(f"{u.speaker.capitalize()}: {u.text}" for u in self.turns())


def conversation_for(call: Call) -> Conversation:
    live = _live_conversation(call)
    transcript = CallTranscript.objects.filter(call=call).first()
    if transcript is not None and transcript.segments:
        recorded = Conversation(
            [Utterance(s["speaker"], s["text"], s.get("start")) for s in transcript.segments if s.get("text")],
            "recording",
        )
        # A caller who typed (widget text box, keypad) is in the live turns, not in the recording.
        if recorded.text_of("caller") or recorded.text_of("mixed") or not live.text_of("caller"):
            return recorded
    return live


def _live_conversation(call: Call) -> Conversation:
    utterances = []
    for turn in Turn.objects.filter(call=call).exclude(speaker=Turn.Speaker.SYSTEM).order_by("index"):
        # What the caller heard, not what the agent meant to say, when it was interrupted.
        text = turn.heard_text if turn.speaker == Turn.Speaker.AGENT and turn.interrupted and turn.heard_text else turn.text
        if text.strip():
            start = turn.start_ms / 1000 if turn.start_ms is not None else None
            utterances.append(Utterance(turn.speaker, text.strip(), start))
    return Conversation(utterances, "live")


def caller_intent(conversation: Conversation) -> str:
    """The first request the caller made, by the dialog engine's recognizer ("" if none).

    Chit-chat ("thanks", "yes", "bye") is not why someone called, so it is passed over."""
    for turn in conversation.turns():
        if turn.speaker in ("caller", "mixed"):
            result = recognize_intent(turn.text)
            if result.intent != UNKNOWN and result.intent not in CONVERSATIONAL:
                return result.intent
    return ""
