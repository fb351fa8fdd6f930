"""Asterisk's REST interface (ARI) as a telephony provider: place and hang up calls.

    place_call   POST /ari/channels?endpoint=Local/+14155550123@voicecrm-dial
                      &context=voicecrm-outbound&extension=s&priority=1&callerId=…
                      &timeout=…&channelId=<the call's public id>
                 body {"variables": {"VOICECRM_CALL_UUID": …, "VOICECRM_AGENT": …, …}}
    hang_up      DELETE /ari/channels/<id>           (404: the channel is already gone)
    transfer     recorded only: the dialplan dials the target when the audio ends (`after` step)

The channel dials ASTERISK_OUTBOUND_ENDPOINT; once it is answered, Asterisk runs the outbound
context (AMD, the `amd` step, AudioSocket). ARI sends no status callbacks to a dialplan channel:
busy, no answer and failures come back through the FastAGI `hangup` step of the dial context
(docs/asterisk.md). The channel id is the call's public id, so a repeated request for a channel
that still exists gets 409 and dials nothing.

Errors are TelephonyError: 4xx permanent (bad request, bad credentials), 5xx and network
failures or timeouts temporary.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from django.conf import settings

from calls.models import Call
from calls.services import call_transfer_log
from telephony.asterisk.services import SAFE_TARGET
from telephony.base import TelephonyError, TelephonyProvider

# What outbound.py accepts for Asterisk: E.164 or an internal extension; nothing else goes
# into the endpoint string.
_DIALABLE = re.compile(r"\+?[0-9*#]{2,20}")


class AriProvider(TelephonyProvider):
    name = "asterisk"
    # Seconds for one ARI request: the originate request returns once the channel exists, long
    # before anyone answers.
    timeout = 10.0

    def check_configured(self) -> None:
        missing = [name for name in ("ASTERISK_ARI_URL", "ASTERISK_ARI_USER", "ASTERISK_ARI_PASSWORD")
                   if not getattr(settings, name, "")]
        if missing:
            raise TelephonyError(f"Asterisk ARI is not configured: set {', '.join(missing)}.", permanent=True)

    def place_call(self, call: Call) -> str:
        self.check_configured()
        if not _DIALABLE.fullmatch(call.to_number):
            raise TelephonyError(f"{call.to_number!r} is not a number or extension to dial.", permanent=True)
        call_uuid = str(call.public_id)
        params = {
            "endpoint": settings.ASTERISK_OUTBOUND_ENDPOINT.replace("{number}", call.to_number),
            "context": settings.ASTERISK_OUTBOUND_CONTEXT, "extension": "s", "priority": 1,
            # A little longer than the dial context rings, so Dial() reports NOANSWER first.
            "timeout": settings.ASTERISK_RING_SECONDS + 5,
            "channelId": call_uuid,
        }
        if call.from_number:
            params["callerId"] = call.from_number
        variables = {
            "VOICECRM_CALL_UUID": call_uuid,
            "VOICECRM_AGENT": call.agent.slug if call.agent_id else "",
            "VOICECRM_RING_SECONDS": str(settings.ASTERISK_RING_SECONDS),
        }
        response = self._request("POST", "/channels", params=params, json={"variables": variables}, ok={200, 409})
        if response.status_code == 409:
            return call_uuid  # this call's channel exists already: it was dialed, not again
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise TelephonyError("ARI answered the originate without a channel id.") from None

    def hang_up(self, call: Call) -> None:
        channel_id = call.provider_call_id
        if not channel_id or channel_id.startswith("dialing:"):
            return  # never dialed: nothing to hang up
        self.check_configured()
        self._request("DELETE", f"/channels/{quote(channel_id, safe='')}", params={"reason": "normal"},
                      ok={200, 204, 404})

    def transfer(self, call: Call, *, target: str) -> None:
        """Record the target: when the voice session ends the audio, the dialplan's `after` step
        reads it (VOICECRM_TRANSFER) and dials it. Logged once per call."""
        if not SAFE_TARGET.fullmatch(target or ""):
            raise TelephonyError(f"{target!r} is not a number, extension or SIP address to transfer to.", permanent=True)
        call_transfer_log(call=call, target=target, reason="transfer")

    def _request(self, method: str, path: str, *, ok: set[int], **kwargs) -> httpx.Response:
        try:
            with httpx.Client(base_url=f"{settings.ASTERISK_ARI_URL}/ari", timeout=self.timeout,
                              auth=(settings.ASTERISK_ARI_USER, settings.ASTERISK_ARI_PASSWORD)) as client:
                response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise TelephonyError(f"ARI did not answer {method} {path} within {self.timeout:g} s.") from None
        except httpx.HTTPError as error:
            raise TelephonyError(f"ARI unreachable: {error}") from None
        if response.status_code in ok:
            return response
        message = _message(response)
        if response.status_code in (401, 403):
            raise TelephonyError(f"ARI refused the credentials ({response.status_code}): check ASTERISK_ARI_USER and "
                                 "ASTERISK_ARI_PASSWORD.", permanent=True)
        permanent = 400 <= response.status_code < 500
        raise TelephonyError(f"ARI {method} {path}: {response.status_code} {message}".strip(), permanent=permanent)


def _message(response: httpx.Response) -> str:
    """ARI's error body is {"message": "…"}; anything else is shown shortened."""
    try:
        return str(response.json().get("message", ""))[:300]
    except (ValueError, AttributeError):
        return response.text[:300]
