"""One error format for the API: DRF's, always a JSON object.

- `{"detail": "message"}` for an error about the request as a whole (401, 403, 404, 405, 413,
  415, 429 with Retry-After, a 409);
- `{"field": ["message", …]}` for a 400 about fields (`non_field_errors` for the body as a whole).

DRF answers its own exceptions so; the handler here also answers, in that format, Django's
request-size errors (an HTML 400 otherwise), a service's ValidationError, a delete that other rows
still reference and a value the database refuses (each a 500 otherwise). The Django handlers below do the
same for requests under /api/ that never reach a view (an unknown path, a crash).
"""

import json
import logging

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    default_code = "payload_too_large"


class StillReferenced(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Other records still refer to this one; remove or change them first."
    default_code = "still_referenced"


class IdempotencyConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This Idempotency-Key was already used for a different call."
    default_code = "idempotency_conflict"


def api_exception_handler(exc, context):
    """DRF's handler, plus:
    - Django's request-size errors: a 413 for a body over the limit, a 400 for too many form
      fields or files;
    - a Django ValidationError (services and model validation raise them): a 400 naming the fields;
    - ProtectedError/RestrictedError (a delete other rows still point at): a 409 naming what refers;
    - DataError (a value the database refuses, such as a number out of its range): a 400;
    - a top-level list of messages (`raise ValidationError("…")`) wrapped as `non_field_errors`,
      so every error body is an object.
    """
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = ParseError(str(exc))
    elif isinstance(exc, DjangoValidationError):
        exc = ValidationError(_validation_detail(exc))
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = StillReferenced(_referenced_detail(exc))
    elif isinstance(exc, DataError):
        # A value the database cannot store or compare (out of range, a NUL byte) that validation
        # let through: the client's input, but logged, since validation should have caught it.
        logger.warning("API request refused by the database: %s", exc, exc_info=exc)
        exc = ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [
            "A value in this request is outside what the database can store or compare."]})
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {api_settings.NON_FIELD_ERRORS_KEY: response.data}
    return response


def _validation_detail(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {(api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
                for field, messages in exc.message_dict.items()}
    return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}


def _referenced_detail(exc: ProtectedError | RestrictedError) -> str:
    objects = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    names = sorted({str(obj._meta.verbose_name_plural) for obj in objects})
    return f"Other records still refer to this one ({', '.join(names)}); remove or change them first."


# --- Requests under /api/ that no view answered (settings.DEBUG off; voicecrm/urls.py) ---------------


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """handler404: an unknown path under /api/ is a JSON 404, like an unknown object."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: a crash under /api/ is a JSON 500 (the traceback goes to the log, never the client)."""
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request)


def bad_request(request, exception):
    """handler400: a request Django refused before any view (a bad Host header…) under /api/ is JSON."""
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception)


# --- The error responses in the OpenAPI schema ----------------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: `detail` for the request as a whole, or a list of messages per field "
                   "(`non_field_errors` for the body as a whole). See docs/api.md, Errors.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {},
}
ERROR_DESCRIPTIONS = {
    "400": "Bad input: the fields or query parameters named in the body.",
    "401": "No credentials, or a token that is unknown, expired or revoked, or a user who is inactive.",
    "403": "The user's role may not do this.",
    "404": "No such object (or page).",
    "405": "The endpoint does not take this method.",
    "409": "The request conflicts with the object's state.",
    "413": "The body is larger than the server accepts.",
    "415": "The body is not JSON or a form.",
    "429": "Too many requests: try again after Retry-After seconds.",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}


def documented_errors(result: dict, **kwargs) -> dict:
    """drf-spectacular postprocessing hook: each operation lists the errors it can answer, in the
    one format (components/schemas/Error), whatever the view declared about them.

    Every operation can be throttled (429). One that reads credentials can answer 401, and 403 if it
    needs them; one with a body or query parameters 400; one with a body 413 and 415; one with a path parameter or
    pages 404. Error responses a view declared get the format too, whatever body it gave them (a
    view's description is kept): a 400 may be a field's messages, a nested list's, or a `detail`
    about a body that is not JSON at all.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            declared = [code for code in responses if code.startswith("4")]
            for code in sorted(set(_error_codes(operation)) | set(declared)):
                response = responses.setdefault(code, {})
                if response.get("description", "No response body") == "No response body":  # a view's `None`
                    response["description"] = ERROR_DESCRIPTIONS.get(code, "An error.")
                # Whatever shape a view described, the body is the one error format.
                response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                if code == "429":
                    response.setdefault("headers", RETRY_AFTER)
            operation["responses"] = dict(sorted(responses.items()))
    _drop_unreferenced_schemas(result)
    return result


def _drop_unreferenced_schemas(result: dict) -> None:
    """Error shapes views described, now replaced by Error, leave no component behind."""
    schemas = result["components"]["schemas"]
    while True:
        text = json.dumps({"paths": result.get("paths", {}), "components": result["components"]}, default=str)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def _error_codes(operation: dict) -> list[str]:
    parameters = operation.get("parameters", [])
    where = {parameter["in"] for parameter in parameters}
    has_body = "requestBody" in operation
    # drf-spectacular lists {} among the security requirements when anonymous requests are allowed;
    # bad credentials are a 401 even there. Only {}: the view reads no credentials at all.
    schemes = [requirement for requirement in operation.get("security", []) if requirement]
    codes = ["429"]
    if schemes:
        codes.append("401")
        if {} not in operation["security"]:
            codes.append("403")
    if has_body or "query" in where:
        codes.append("400")
    if has_body:
        codes += ["413", "415"]
    if "path" in where or any(parameter["name"] == "page" for parameter in parameters):
        codes.append("404")
    return sorted(codes)
