"""A Chat Completions server on loopback for the LLM engine's tests.

It speaks the OpenAI wire format: `POST /v1/chat/completions`, a JSON completion when
`stream` is false, and otherwise server-sent events of `chat.completion.chunk` objects, with
text in `delta.content` and tool calls in `delta.tool_calls` pieces (id and name first, then
the arguments string in fragments), a final chunk with `finish_reason`, then `data: [DONE]`.
Each test scripts the replies in order; requests are kept for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedReply(dict):
    """{"content": str} | {"tool_calls": [{"name", "arguments": dict|str}]} with optional
    "delay" (seconds before answering), "pause" ([n, seconds]: a pause after the n-th text piece),
    "status" (an HTTP error), "json" (answer without streaming)."""


class ChatCompletionsServer:
    def __init__(self) -> None:
        self.replies: list[dict] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                reply = server.replies.pop(0) if server.replies else {"content": "Okay."}
                time.sleep(reply.get("delay", 0))
                if reply.get("status"):
                    payload = json.dumps({"error": {"message": "model overloaded"}}).encode()
                    self.send_response(reply["status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if not body.get("stream") or reply.get("json"):
                    self._json(body, reply)
                else:
                    self._stream(body, reply)

            def _tool_calls(self, reply: dict) -> list[dict]:
                calls = []
                for n, call in enumerate(reply.get("tool_calls", [])):
                    arguments = call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"])
                    calls.append({"id": f"call_{n}_{len(server.requests)}", "type": "function",
                                  "function": {"name": call["name"], "arguments": arguments}})
                return calls

            def _json(self, body: dict, reply: dict) -> None:
                message = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls"):
                    message["tool_calls"] = self._tool_calls(reply)
                payload = json.dumps({
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _chunk(self, body: dict, delta: dict, finish_reason=None) -> None:
                chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
                self._write(f"data: {json.dumps(chunk)}\n\n")

            def _write(self, text: str) -> None:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _stream(self, body: dict, reply: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._write(": keep-alive\n\n")
                self._chunk(body, {"role": "assistant", "content": ""})
                content = reply.get("content") or ""
                pieces = [content[i:i + 7] for i in range(0, len(content), 7)]
                for n, piece in enumerate(pieces):
                    self._chunk(body, {"content": piece})
                    if reply.get("pause") and n + 1 == reply["pause"][0]:
                        time.sleep(reply["pause"][1])
                for index, call in enumerate(self._tool_calls(reply)):
                    self._chunk(body, {"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                       "function": {"name": call["function"]["name"], "arguments": ""}}]})
                    arguments = call["function"]["arguments"]
                    for i in range(0, len(arguments), 5):
                        self._chunk(body, {"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + 5]}}]})
                self._chunk(body, {}, "tool_calls" if reply.get("tool_calls") else "stop")
                self._write("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # a client that timed out and hung up (the timeout tests do that on purpose)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> ChatCompletionsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
