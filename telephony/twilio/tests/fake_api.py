"""A loopback fake of the part of Twilio's REST API VoiceCRM uses, for the real `twilio` client.

    api = FakeTwilioApi(account_sid, auth_token).start()   # http://127.0.0.1:<port>
    settings.TWILIO_API_BASE_URL = api.base_url
    ...
    api.requests[-1].param("Twiml")
    api.stop()

It answers as Twilio's docs show (JSON bodies, form-encoded requests, HTTP basic auth):
- POST /2010-04-01/Accounts/{AccountSid}/Calls.json: create a call (201, status "queued").
  To, From and one of Url / Twiml / ApplicationSid are required (400, 21205 / 21211 / 21213).
- POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json: update a call: Twiml or Url
  (redirect; 21220 once the call has ended), Status=completed or canceled (hang up).
- GET of the same: the call.
- 404 with code 20404 for an unknown call; 401 with 20003 for wrong credentials.
Every request is recorded (method, path, form params, auth header). `fail_next()` queues error
answers (a 400 with a code, a 500, a 429), `delay_s` makes it slow (client timeouts).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_CALLS = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Calls\.json$")
_CALL = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Calls/(?P<sid>CA[0-9a-f]{32})\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ENDED = {"completed", "busy", "no-answer", "failed", "canceled"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, list[str]]
    authorization: str
    query: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) of HTTP basic auth."""
        if not self.authorization.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(self.authorization[6:]).decode().partition(":")
        return user, password


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def error_body(status: int, code: int, message: str) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class FakeTwilioApi:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.calls: dict[str, dict] = {}
        self.requests: list[RecordedRequest] = []
        self.delay_s = 0.0
        self._failures: list[tuple[int, dict | str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- control ------------------------------------------------------------------------------

    def start(self) -> FakeTwilioApi:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio-api",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, status: int, code: int | None = None, message: str = "error", *, raw: str = "") -> None:
        """The next request is answered with this error (a JSON body, or `raw` text)."""
        with self._lock:
            self._failures.append((status, raw or error_body(status, code or status, message)))

    def add_call(self, *, to: str = "+14155550123", from_: str = "+14155550100", status: str = "in-progress",
                 direction: str = "inbound") -> str:
        """A call Twilio knows about (an incoming one, or one already answered)."""
        sid = new_call_sid()
        with self._lock:
            self.calls[sid] = self._call_json(sid, to=to, from_=from_, status=status, direction=direction)
        return sid

    def end_call(self, sid: str, status: str = "completed") -> None:
        with self._lock:
            self.calls[sid]["status"] = status

    # --- the API --------------------------------------------------------------------------------

    def _call_json(self, sid: str, *, to: str, from_: str, status: str, direction: str) -> dict:
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}"
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None, "api_version": "2010-04-01",
            "caller_name": None, "date_created": now, "date_updated": now, "direction": direction, "duration": None,
            "end_time": None, "forwarded_from": None, "from": from_, "from_formatted": from_, "group_sid": None,
            "parent_call_sid": None, "phone_number_sid": "PN" + "0" * 32, "price": None, "price_unit": "USD",
            "sid": sid, "start_time": None, "status": status, "to": to, "to_formatted": to, "trunk_sid": None,
            "queue_time": "1000", "uri": uri + ".json",
            "subresource_uris": {name: f"{uri}/{name.title().replace('_', '')}.json"
                                 for name in ("notifications", "recordings", "payments", "events", "siprec",
                                              "streams", "user_defined_message_subscriptions",
                                              "user_defined_messages")},
        }

    def handle(self, request: RecordedRequest) -> tuple[int, dict | str]:
        with self._lock:
            self.requests.append(request)
            if self._failures:
                return self._failures.pop(0)
        if request.credentials != (self.account_sid, self.auth_token):
            return 401, error_body(401, 20003, "Authenticate")
        created = _CALLS.match(request.path)
        if created and request.method == "POST":
            return self._create(request, created["account"])
        one = _CALL.match(request.path)
        if one and one["account"] == self.account_sid:
            with self._lock:
                call = self.calls.get(one["sid"])
            if call is None:
                return 404, error_body(404, 20404, f"The requested resource {request.path} was not found")
            if request.method == "POST":
                return self._update(request, call)
            if request.method == "GET":
                return 200, call
        return 404, error_body(404, 20404, f"The requested resource {request.path} was not found")

    def _create(self, request: RecordedRequest, account: str) -> tuple[int, dict]:
        if account != self.account_sid:
            return 401, error_body(401, 20003, "Authenticate")
        to, from_ = request.param("To") or "", request.param("From") or ""
        if not any(request.param(name) for name in ("Url", "Twiml", "ApplicationSid")):
            return 400, error_body(400, 21205, "Url parameter is required.")
        if not from_:
            return 400, error_body(400, 21213, "Caller phone number is required")
        if not _E164.match(to) and not to.startswith(("client:", "sip:")):
            return 400, error_body(400, 21211, f"Invalid 'To' Phone Number: {to[:20]}")
        sid = new_call_sid()
        call = self._call_json(sid, to=to, from_=from_, status="queued", direction="outbound-api")
        with self._lock:
            self.calls[sid] = call
        return 201, call

    def _update(self, request: RecordedRequest, call: dict) -> tuple[int, dict]:
        status = request.param("Status")
        with self._lock:
            if request.param("Twiml") or request.param("Url"):
                if call["status"] in ENDED:
                    return 400, error_body(400, 21220, "Call is not in-progress. Cannot redirect.")
                call["twiml"] = request.param("Twiml")
            if status in ("completed", "canceled") and call["status"] not in ENDED:
                call["status"] = status
            return 200, dict(call)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilioApi
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        request = RecordedRequest(method=self.command, path=parts.path, params=parse_qs(body, keep_blank_values=True),
                                  authorization=self.headers.get("Authorization", ""), query=parse_qs(parts.query))
        status, answer = self.fake.handle(request)
        if self.fake.delay_s:
            time.sleep(self.fake.delay_s)
        data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(answer, str) else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout tests)

    do_GET = do_POST = _serve

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
        pass
