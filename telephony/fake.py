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

    def place_call(self, *, to: str, from_: str, callback_url: str) -> str:
        if to in self.failing:
            raise TelephonyError(f"cannot call {to}", permanent=self.failing[to])
        call_id = f"FAKE{next(_ids):06d}"
        outbox.append({"action": "place_call", "call_id": call_id, "to": to, "from": from_, "callback_url": callback_url})
        return call_id

    def transfer(self, *, call_id: str, target: str) -> None:
        outbox.append({"action": "transfer", "call_id": call_id, "target": target})

    def hang_up(self, *, call_id: str) -> None:
        outbox.append({"action": "hang_up", "call_id": call_id})
