"""The call's side of the dialog's recorder (agents/recorder.py): what the dialog reports is
written to this call's rows through calls.services.

This is the one writer of `Call.customer`, of the dialog's CallEvents (tool calls and results,
the caller ID match, the transfer) and of InformationRecord rows. The voice session and the text
channel build one per call and hand it to the engine in the CallContext. Like the engine, it is
synchronous ORM code, called in the call's thread and the engine's transaction.
"""

from __future__ import annotations

from typing import Any

from agents.recorder import CallRecorder
from calls import services
from calls.models import Call


class CallRecorderService(CallRecorder):
    def __init__(self, call: Call) -> None:
        self.call = call

    def customer_identified(self, *, customer_id: int, method: str) -> None:
        services.call_set_customer(call=self.call, customer_id=customer_id)

    def event(self, *, kind: str, name: str, payload: dict[str, Any]) -> None:
        services.call_event_log(call=self.call, kind=kind, name=name, payload=payload)

    def transfer_requested(self, *, target: str, reason: str) -> None:
        services.call_transfer_log(call=self.call, target=target, reason=reason)

    def information_shared(self, *, category: str, items: dict[str, str], customer_id: int | None) -> None:
        services.information_record_save(call=self.call, category=category, items=items, customer_id=customer_id)
