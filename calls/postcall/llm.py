"""A JSON answer from the configured LLM for a post-call stage, through the one Chat Completions client."""

from __future__ import annotations

import httpx
from django.conf import settings

from calls.postcall.errors import StageError
from core.llm import ChatCompletionsClient, LLMError


def llm_json(*, system: str, user: str) -> dict:
    """A JSON object answering `user`; raise StageError on any failure (permanent when the
    server answered but not with a JSON object)."""
    # Post-call work is not on a caller's clock: allow several times the live timeout.
    client = ChatCompletionsClient(base_url=settings.LLM_BASE_URL, model=settings.LLM_MODEL,
                                   api_key=settings.LLM_API_KEY, timeout=max(settings.LLM_TIMEOUT_SECONDS * 4, 30.0))
    try:
        return client.complete_json(system=system, user=user)
    except httpx.HTTPError as exc:
        raise StageError(f"LLM request failed: {exc}") from exc
    except LLMError as exc:
        raise StageError(str(exc), permanent=True) from exc
