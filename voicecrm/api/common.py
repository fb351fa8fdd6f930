"""What the resource viewsets share: permissions for actions that are no plain add/change/delete,
a boolean filter that refuses what is not a boolean, the error responses the schema lists, and
the services' ValidationErrors as API errors."""

from collections.abc import Mapping

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.settings import api_settings

from voicecrm.api.permissions import ModelPermissions


class ActionPermissions(ModelPermissions):
    """ModelPermissions, with a viewset's extra actions mapped to the permissions they need.

    `action_permissions` maps an action to permission names, or to a dict of them per HTTP method:
    `%(app_label)s` and `%(model_name)s` are the viewset's model. Without an entry, an action
    needs what its method does (POST: add). Cancelling an appointment is a POST that changes it.
    """

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if isinstance(required, Mapping):
            required = required.get(request.method)
        if required is None:
            return super().has_permission(request, view)
        if not request.user or not request.user.is_authenticated:
            return False
        model = self._queryset(view).model
        names = {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
        return request.user.has_perms([perm % names for perm in required])


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is an error, where Django's field reads it as "unset"."""

    widget = forms.TextInput

    def to_python(self, value):
        text = str(value).strip().lower() if value is not None else ""
        if not text:
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise DjangoValidationError("Use true or false.", code="invalid")

    def validate(self, value) -> None:
        pass


class BooleanFilter(filters.BooleanFilter):
    """`?active=maybe` is a 400, not the whole list (django-filter's BooleanFilter ignores it)."""

    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs) -> None:
        # django-filter's BooleanWidget turns what is not "true" or "false" into "unset" before the field sees it.
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class Conflict(APIException):
    """The object's state refuses the request (an appointment already cancelled, a delivery sent)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state does not allow this."
    default_code = "conflict"


def service_error(error: DjangoValidationError, *, field: str | None = None) -> ValidationError:
    """A service's ValidationError as a 400: errors per field as they are; what is about the whole
    object (a plain message, a constraint) under `field` when the request has one field it is
    about, else under `non_field_errors`."""
    detail = serializers.as_serializer_error(error)
    general = [*detail.pop(NON_FIELD_ERRORS, []), *detail.pop(api_settings.NON_FIELD_ERRORS_KEY, [])]
    if general:
        key = field or api_settings.NON_FIELD_ERRORS_KEY
        detail[key] = [*detail.get(key, []), *general]
    return ValidationError(detail)


# Descriptions only: the schema's postprocessing (voicecrm/api/errors.py `documented_errors`) gives
# every error response the one error format.
ERROR_RESPONSES = {
    400: OpenApiResponse(description="Bad input: each bad field (or `non_field_errors`) with its messages. "
                                     "Nothing was changed."),
    401: OpenApiResponse(description="No credentials, or a token that expired or was revoked."),
    403: OpenApiResponse(description="The role may not do this (`detail`), or may not change the fields named. "
                                     "Nothing was changed."),
    404: OpenApiResponse(description="No such object."),
    409: OpenApiResponse(description="The object's state does not allow this."),
    413: OpenApiResponse(description="The body is larger than the server accepts."),
    429: OpenApiResponse(description="Too many requests; retry after `Retry-After` seconds."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The schema's error responses for `codes` (401, 403 and 429 apply to every endpoint)."""
    return {code: ERROR_RESPONSES[code] for code in sorted({401, 403, 429, *codes})}
