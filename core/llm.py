"""The one HTTP client for OpenAI-compatible Chat Completions servers (Ollama, vLLM, llama.cpp
server, OpenAI, Groq): the dialog engine streams replies with tools through it, and the post-call
stages ask it for JSON objects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx


class LLMError(Exception):
    """The server answered, but not with a usable completion."""


class ChatCompletionsClient:
    """The only code that speaks HTTP to the model server."""

    def __init__(self, *, base_url: str, model: str, api_key: str = "", timeout: float = 8.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout

    def complete_json(self, *, system: str, user: str) -> dict:
        """One non-streamed completion asking for a JSON object.

        Raise httpx.HTTPError when the server cannot be reached or answers an error status
        (worth retrying), LLMError when it answers but not with a JSON object (not worth it).
        """
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        headers = {**self.headers, "Accept": "application/json"}
        response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
        response.raise_for_status()
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LLMError(f"LLM answer has no message: {exc}") from exc
        text = (content or "").strip()
        if text.startswith("```"):  # some models fence JSON despite the instruction
            text = text.strip("`").removeprefix("json").strip()
        try:
            result = json.loads(text)
        except ValueError as exc:
            raise LLMError(f"LLM answer is not JSON: {text[:200]!r}") from exc
        if not isinstance(result, dict):
            raise LLMError("LLM answer is not a JSON object")
        return result

    def stream(self, *, messages: list[dict], tools: list[dict], deadline: float) -> Iterator[dict]:
        """Events of one completion: {"content": str} pieces, then {"tool_calls": [...], "finish_reason": str}.

        `deadline` (time.monotonic()) bounds the whole completion, not only each read.
        """
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True, "temperature": 0.2}
        if tools:
            payload["tools"] = tools
            payload["tool_choice"] = "auto"
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0))
        calls: dict[int, dict] = {}
        finish_reason = ""
        with httpx.Client(timeout=timeout) as client:
            with client.stream("POST", self.url, json=payload, headers=self.headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise LLMError(f"HTTP {response.status_code}: {response.text[:200]}")
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    # Servers may ignore "stream": read the whole completion instead.
                    response.read()
                    yield from self._whole(response.json())
                    return
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the completion took longer than LLM_TIMEOUT_SECONDS")
                    if not line.startswith("data:"):
                        continue  # comments (": keep-alive"), event names, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError:
                        raise LLMError(f"not JSON: {data[:100]}") from None
                    if chunk.get("error"):
                        raise LLMError(str(chunk["error"])[:200])
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            yield {"content": delta["content"]}
                        for piece in delta.get("tool_calls") or []:
                            call = calls.setdefault(piece.get("index", len(calls)), {"id": "", "name": "", "arguments": ""})
                            call["id"] = piece.get("id") or call["id"]
                            function = piece.get("function") or {}
                            call["name"] += function.get("name") or ""
                            call["arguments"] += function.get("arguments") or ""
                        finish_reason = choice.get("finish_reason") or finish_reason
        yield {"tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish_reason}

    @staticmethod
    def _whole(body: dict) -> Iterator[dict]:
        try:
            choice = body["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"no choices in {str(body)[:200]}") from None
        message = choice.get("message") or {}
        if message.get("content"):
            yield {"content": message["content"]}
        calls = [{"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"].get("arguments", "")}
                 for c in message.get("tool_calls") or []]
        yield {"tool_calls": calls, "finish_reason": choice.get("finish_reason", "")}
