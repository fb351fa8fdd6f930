"""Who the client is behind reverse proxies: forwarding headers only from TRUSTED_PROXIES.

Anyone can send `X-Forwarded-For: 1.2.3.4`. Only a proxy we run appends the address it saw, so
the header is read only when the TCP peer is a trusted proxy, from the right: each trusted hop
vouches for the address to its left, and the first (right-most) address that is not a trusted
proxy is the client. Whatever lies further left was written by the client and is ignored.
`daphne --proxy-headers` trusted the left-most address from any peer, so one socket could claim
a fresh IP per connection and escape the per-IP limits.

Used by the widget's per-IP connection budget (scope["client"]) and, through
`ForwardedHeadersMiddleware`, by every HTTP request (REMOTE_ADDR, which the admin's sign-in
lockout counts by). In core/ because telephony/ needs it and must not import voicecrm/.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Headers only a trusted proxy may set; from anyone else they are removed before Django reads them
# (X-Forwarded-Proto: is_secure(); X-Forwarded-Host: with USE_X_FORWARDED_HOST).
FORWARDED_META = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")
# Client-address headers we never read: removed from every request, so no library falls back on them.
UNUSED_META = ("HTTP_X_REAL_IP", "HTTP_FORWARDED", "HTTP_X_CLIENT_IP", "HTTP_CLIENT_IP")


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """IPs and CIDRs ("10.0.0.5", "172.28.0.0/24", "::1"); ValueError names a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(entries)


def _parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, "[v6]", "[v6]:port" or "v4:port"."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted_proxy(address: str | Address | None) -> bool:
    if isinstance(address, str):
        address = _parse_address(address)
    if address is None:
        return False
    return any(address in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(peer: str, forwarded_for: Iterable[str] = ()) -> str:
    """The client's address: `peer` (the TCP peer), unless it is a trusted proxy; then the
    right-most X-Forwarded-For hop that is not a trusted proxy. `forwarded_for` holds the
    header's values in order (a request may carry several X-Forwarded-For lines)."""
    if not is_trusted_proxy(peer):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = _parse_address(peer)
    for hop in reversed(hops):
        address = _parse_address(hop)
        if address is None:
            break  # garbage: the last address a trusted hop vouched for is the best we know
        client = address
        if not is_trusted_proxy(address):
            break
    return str(client) if client is not None else peer


class ForwardedHeadersMiddleware(MiddlewareMixin):
    """First in MIDDLEWARE: REMOTE_ADDR becomes the client behind trusted proxies, and forwarding
    headers are consumed (from a trusted proxy) or dropped (from anyone else), so nothing later
    (Django's is_secure(), DRF's throttle identity, the sign-in lockout) reads a spoofed one."""

    def process_request(self, request: HttpRequest) -> None:
        meta = request.META
        for name in UNUSED_META:
            meta.pop(name, None)
        peer = meta.get("REMOTE_ADDR", "")
        if is_trusted_proxy(peer):
            meta["REMOTE_ADDR"] = client_address(peer, [meta.get("HTTP_X_FORWARDED_FOR", "")])
            meta.pop("HTTP_X_FORWARDED_FOR", None)  # resolved: REMOTE_ADDR is the answer
        else:
            for name in FORWARDED_META:
                meta.pop(name, None)
