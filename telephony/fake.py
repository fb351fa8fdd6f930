"""An in-memory provider for unit tests of the code around a provider (like Django's locmem
mail backend): every request is appended to `outbox`, nothing leaves the process."""

from __future__ import annotations

import itertools

from telephony.base import TelephonyError, TelephonyProvider

outbox: list[dict] = []
_ids = itertools.count(1)


class FakeProvider(TelephonyProvider):
    name = "fake"
    # Numbers that fail, for tests of error handling: to -> permanent?
    failing: dict[str, bool] = {}
    # Set to a message to make check_configured() fail, as a provider without credentials does.
    missing: str = ""

    def check_configured(self) -> None:
        if self.missing:
            raise TelephonyError(self.missing, permanent=True)

    def place_call(self, call) -> str:
        if call.to_number in self.failing:
            raise TelephonyError(f"cannot call {call.to_number}", permanent=self.failing[call.to_number])
        call_id = f"FAKE{next(_ids):06d}"
        outbox.append({"action": "place_call", "call_id": call_id, "to": call.to_number, "from": call.from_number,
                       "call": str(call.public_id), "variables": dict(call.variables)})
        return call_id

    def transfer(self, call, *, target: str) -> None:
        outbox.append({"action": "transfer", "call_id": call.provider_call_id, "target": target})

    def hang_up(self, call) -> None:
        outbox.append({"action": "hang_up", "call_id": call.provider_call_id})
