"""The provider interface every phone channel implements, and its one error type.

A channel package (telephony/browser/, telephony/twilio/, telephony/asterisk/) has two halves:
a transport adapter that turns its wire protocol into the voice-session interface
(`calls.session.Transport`), and, for networks that can place and steer calls, a provider:

    provider = get_provider("twilio")
    provider.check_configured()              # before a call is queued: credentials present?
    call.provider_call_id = provider.place_call(call)     # a queued outbound Call
    provider.transfer(call, target="+14155550199")
    provider.hang_up(call)

Every method gets the Call row, so a provider builds what it needs from it (the number, the
context variables, its own callback URLs from the call's public id). Providers raise
`TelephonyError`. The caller records `message` on the call and stops retrying when the error
is `permanent` (a bad number, a suspended account, missing credentials); a temporary one (a
timeout, a 5xx) may be retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calls.models import Call


class TelephonyError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


class TelephonyProvider:
    """What a phone network offers the product. Every method raises TelephonyError."""

    name: str = ""

    def check_configured(self) -> None:
        """Raise TelephonyError(permanent=True) saying what is missing (credentials, URLs)."""

    def place_call(self, call: Call) -> str:
        """Dial `call.to_number` from `call.from_number` for a queued outbound Call; return the
        provider's call id. The call's progress comes back through the channel's callbacks."""
        raise NotImplementedError

    def transfer(self, call: Call, *, target: str) -> None:
        """Bridge a live call to a person (a phone number or an extension)."""
        raise NotImplementedError

    def hang_up(self, call: Call) -> None:
        """End a live call; a call that has already ended is not an error."""
        raise NotImplementedError
