"""One error format for the API: DRF's ({"field": ["message"]} or {"detail": "message"}), with
Django's request-size errors answered in it too."""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.views import exception_handler


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    default_code = "payload_too_large"


def api_exception_handler(exc, context):
    """DRF's handler, plus Django's request-size errors as JSON: a 413 for a body over the limit
    (Django itself answers an HTML 400), a 400 for too many form fields or files."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = ParseError(str(exc))
    return exception_handler(exc, context)


class IdempotencyConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This Idempotency-Key was already used for a different call."
    default_code = "idempotency_conflict"
