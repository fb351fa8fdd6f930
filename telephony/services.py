"""Writes to routes (phone numbers, Asterisk extensions, widget keys), with the model's rules:
numbers in E.164, extensions of digits, * and #, widget origins like https://shop.example, a
generated key when a widget key is left empty, one route per address and kind."""

from typing import Any, TypedDict, Unpack

from django.core.exceptions import ValidationError
from django.db import transaction

from telephony.models import Route


class RouteFields(TypedDict, total=False):
    kind: str
    address: str
    agent: Any  # an agents.AgentConfig
    label: str
    allowed_origins: str  # one origin a line
    active: bool


def _validate(route: Route) -> None:
    """Route.clean(), then every field and constraint (ValidationError names the field).

    clean() runs first because it fills an empty widget key, which the field check alone refuses
    as blank; the number it fails to read is reported on the address, not the whole route.
    """
    try:
        route.clean()
    except ValidationError as error:
        raise (error if hasattr(error, "error_dict") else ValidationError({"address": error.messages})) from None
    route.full_clean()


def route_create(**fields: Unpack[RouteFields]) -> Route:
    """A new route, validated as _validate says."""
    route = Route(**fields)
    _validate(route)
    route.save()
    return route


@transaction.atomic
def route_update(*, route: Route, **changes: Unpack[RouteFields]) -> Route:
    """Apply `changes` and validate the whole route again (a new kind re-checks the address)."""
    unknown = set(changes) - set(RouteFields.__annotations__)
    if unknown:
        raise TypeError(f"route_update() cannot set {', '.join(sorted(unknown))}")
    stored = Route.objects.select_for_update().get(pk=route.pk)
    for name, value in changes.items():
        setattr(stored, name, value)
    _validate(stored)
    # clean() may rewrite the address (E.164, a generated key) whatever was sent.
    stored.save(update_fields=sorted({*changes, "address"}))
    return stored
