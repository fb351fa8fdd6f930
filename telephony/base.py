"""The provider interface every phone channel implements, and its one error type.

A channel package (telephony/browser/, and the phone providers beside it) has two halves:
a transport adapter that turns its wire protocol into the voice-session interface
(`calls.session.Transport`), and, for networks that can place and steer calls, a provider:

    provider = get_provider("twilio")
    sid = provider.place_call(to="+14155550123", from_="+14155550100", callback_url=url)
    provider.transfer(call_id=sid, target="+14155550199")
    provider.hang_up(call_id=sid)

Providers raise `TelephonyError`. The caller records `message` on the call and stops retrying
when the error is `permanent` (a bad number, a suspended account); a temporary one (a timeout,
a 5xx) may be retried.
"""

from __future__ import annotations


class TelephonyError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


class TelephonyProvider:
    """What a phone network offers the product. Every method raises TelephonyError."""

    name: str = ""

    def place_call(self, *, to: str, from_: str, callback_url: str) -> str:
        """Start an outbound call and return the provider's call id."""
        raise NotImplementedError

    def transfer(self, *, call_id: str, target: str) -> None:
        """Bridge a live call to a person (a phone number or an extension)."""
        raise NotImplementedError

    def hang_up(self, *, call_id: str) -> None:
        """End a live call; a call that has already ended is not an error."""
        raise NotImplementedError
