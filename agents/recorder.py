"""What the dialog tells the call about itself: the caller it identified, the tools it ran, a
transfer it asked for, facts the caller shared.

The dialog never writes call records. It calls the recorder in its `CallContext`; whoever owns
the call (the voice session, the text channel) passes one that stores these in the call's rows.
`CallRecorder` itself records nothing, so an engine runs without a call (tests, benchmarks), and
`MemoryRecorder` keeps what it was told in lists, for tests of the dialog alone.

Methods are called synchronously, in the engine's thread and transaction: with a recorder that
writes to the database, a tool that fails rolls back what it recorded with the rest of its writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CallRecorder:
    """The interface, and the default that records nothing."""

    def customer_identified(self, *, customer_id: int, method: str) -> None:
        """The caller is this customer (found by `method`: caller_id, account_number, phone,
        name_postcode, created); the call belongs on the customer's timeline."""

    def event(self, *, kind: str, name: str, payload: dict[str, Any]) -> None:
        """Something that happened in the dialog: a tool call or result, a caller ID match.
        `kind` is a call event kind ("tool_call", "tool_result", "action"); `payload` is JSON."""

    def transfer_requested(self, *, target: str, reason: str) -> None:
        """The caller is to be handed to `target`. Recorded once per call, however often it is asked."""

    def information_shared(self, *, category: str, items: dict[str, str], customer_id: int | None) -> None:
        """Facts the caller gave, as text; a later value for the same category and key replaces the earlier."""


@dataclass
class MemoryRecorder(CallRecorder):
    """Keeps everything it is told, in order; nothing is stored."""

    customers: list[tuple[int, str]] = field(default_factory=list)  # (customer_id, method)
    events: list[tuple[str, str, dict]] = field(default_factory=list)  # (kind, name, payload)
    transfers: list[tuple[str, str]] = field(default_factory=list)  # (target, reason)
    information: dict[tuple[str, str], str] = field(default_factory=dict)  # (category, key) -> value

    def customer_identified(self, *, customer_id: int, method: str) -> None:
        self.customers.append((customer_id, method))

    def event(self, *, kind: str, name: str, payload: dict[str, Any]) -> None:
        self.events.append((kind, name, payload))

    def transfer_requested(self, *, target: str, reason: str) -> None:
        if not self.transfers:
            self.transfers.append((target, reason))

    def information_shared(self, *, category: str, items: dict[str, str], customer_id: int | None) -> None:
        self.information.update({(category, key): value for key, value in items.items()})
