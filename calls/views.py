"""Call recordings, streamed to signed-in staff with calls.view_call; never a public media URL.

Browsers' <audio> seeks with Range requests, so single byte ranges are answered with 206.
With RECORDINGS_SENDFILE set, the proxy (nginx X-Accel-Redirect, Apache X-Sendfile) sends the
file, ranges included, once this view has checked who is asking.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from urllib.parse import quote
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files import File
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.settings import api_settings

from calls.models import Call

CHUNK_BYTES = 64 * 1024


class _Unsatisfiable(Exception):
    pass


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte asked for by a `Range: bytes=…` header, or None for the whole file.

    Raises _Unsatisfiable for a malformed byte range or one that starts past the end (416).
    Other units are ignored, and so are several ranges: media players ask for one, and the whole
    file is a valid answer to any Range request (RFC 9110 §14.2).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last) or not (first.isdigit() or not first) or not (last.isdigit() or not last):
        raise _Unsatisfiable
    if not first:  # "-500": the last 500 bytes
        if int(last) == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - int(last)), size - 1
    start, end = int(first), int(last) if last else size - 1
    if end < start or start >= size:
        raise _Unsatisfiable
    return start, min(end, size - 1)


def _api_user(request: HttpRequest):
    """The user of an API token (or whatever the API authenticates with), for API clients."""
    drf_request = Request(request)
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication, SessionAuthentication):
            continue  # the session was already read by the middleware
        try:
            result = authentication().authenticate(drf_request)
        except AuthenticationFailed:
            return None
        if result is not None:
            return result[0]
    return None


async def _file_chunks(file: File, start: int, length: int) -> AsyncIterator[bytes]:
    # Asynchronous, so daphne streams it; a synchronous iterator is read whole into memory first.
    read = sync_to_async(file.read, thread_sensitive=False)
    try:
        await sync_to_async(file.seek, thread_sensitive=False)(start)
        while length > 0:
            chunk = await read(min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        await sync_to_async(file.close, thread_sensitive=False)()


@require_safe
def call_recording(request: HttpRequest, public_id: UUID) -> HttpResponseBase:
    user = request.user if request.user.is_authenticated else _api_user(request)
    if user is None:
        if "HTTP_AUTHORIZATION" in request.META:
            return HttpResponse("Authentication required.", status=401, content_type="text/plain")
        return redirect_to_login(request.get_full_path())
    if not user.has_perm("calls.view_call"):
        return HttpResponse("You may not listen to call recordings.", status=403, content_type="text/plain")
    call = get_object_or_404(Call.objects.only("id", "public_id", "recording"), public_id=public_id)
    return recording_response(request, call)


def recording_response(request: HttpRequest, call: Call) -> HttpResponseBase:
    """The call's recording for a request someone has already allowed: the whole file, the byte
    range asked for (206, or 416), or the proxy's sendfile header. Http404 without a recording.
    Also answers GET /api/v1/calls/{id}/recording/ (voicecrm/api/calls.py)."""
    if not call.recording:
        raise Http404("This call has no recording.")
    name = call.recording.name
    storage = call.recording.storage
    if not storage.exists(name):
        raise Http404("The recording file is missing.")
    headers = {
        "Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "Content-Disposition": f'inline; filename="call-{call.public_id}.wav"',
        # Recordings are personal data: no shared cache, and nothing left in the browser's cache.
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }
    if settings.RECORDINGS_SENDFILE == "nginx":
        response = HttpResponse(headers=headers)
        response["X-Accel-Redirect"] = settings.RECORDINGS_NGINX_LOCATION.rstrip("/") + "/" + quote(name)
        return response
    if settings.RECORDINGS_SENDFILE == "apache":
        response = HttpResponse(headers=headers)
        response["X-Sendfile"] = storage.path(name)
        return response

    size = storage.size(name)
    try:
        byte_range = requested_range(request.headers.get("Range"), size)
    except _Unsatisfiable:
        return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    start, end = byte_range or (0, size - 1)
    length = end - start + 1 if size else 0
    file = storage.open(name, "rb")
    response = StreamingHttpResponse(_file_chunks(file, start, length), status=206 if byte_range else 200,
                                     headers=headers)
    response["Content-Length"] = str(length)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
