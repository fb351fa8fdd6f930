"""Webhook requests as Twilio sends them: documented bodies (fixtures/*.json), signed with the
real RequestValidator over the public URL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC3b6e1d0a9f8c7b6a5e4d3c2b1a0f9e8d"
AUTH_TOKEN = "6f1e2d3c4b5a69788796a5b4c3d2e1f0"
PUBLIC_BASE_URL = "https://crm.example.com"
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_signed(client, path: str, params: dict, *, signed_url: str | None = None, signature: str | None = None,
                **extra):
    """POST form `params` to `path` as Twilio would: signed over PUBLIC_BASE_URL + path (or
    `signed_url`), unless `signature` is given ("" sends none)."""
    if signature is None:
        signature = sign(signed_url or PUBLIC_BASE_URL + path, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", **headers, **extra)
