"""The transport-agnostic voice session: one per live call (see docs/voice.md)."""

from .session import CallAlreadyEnded, SessionStats, SessionSummary, VoiceSession, phrase_cache, session_warm_up
from .transport import MemoryTransport, SessionEvent, Transport

__all__ = ["CallAlreadyEnded", "MemoryTransport", "SessionEvent", "SessionStats", "SessionSummary", "Transport", "VoiceSession",
           "phrase_cache", "session_warm_up"]
