"""A JSON answer from the configured OpenAI-compatible LLM (Ollama, vLLM, llama.cpp, OpenAI…)."""

from __future__ import annotations

import json

import httpx
from django.conf import settings

from calls.postcall.errors import StageError


def llm_json(*, system: str, user: str) -> dict:
    """POST /chat/completions asking for a JSON object; raise StageError on any failure."""
    url = f"{settings.LLM_BASE_URL.rstrip('/')}/chat/completions"
    headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"} if settings.LLM_API_KEY else {}
    body = {
        "model": settings.LLM_MODEL,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    # Post-call work is not on a caller's clock: allow several times the live timeout.
    timeout = max(settings.LLM_TIMEOUT_SECONDS * 4, 30.0)
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
    except httpx.HTTPError as exc:
        raise StageError(f"LLM request failed: {exc}") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StageError(f"LLM answer has no message: {exc}", permanent=True) from exc
    text = content.strip()
    if text.startswith("```"):  # some models fence JSON despite the instruction
        text = text.strip("`").removeprefix("json").strip()
    try:
        result = json.loads(text)
    except ValueError as exc:
        raise StageError(f"LLM answer is not JSON: {text[:200]!r}", permanent=True) from exc
    if not isinstance(result, dict):
        raise StageError("LLM answer is not a JSON object", permanent=True)
    return result
