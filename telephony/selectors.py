"""Reads of routes: which agent a widget key, phone number or extension reaches."""

from __future__ import annotations

from django.db.models import QuerySet

from core.phones import phone_or_none
from telephony.models import Route


def route_list_active(*, kind: str) -> QuerySet[Route]:
    """Active routes of one kind whose agent is active too: only these can take a call."""
    return Route.objects.select_related("agent").filter(kind=kind, active=True, agent__active=True)


def widget_route_for_key(key: str) -> Route | None:
    """The route a widget key reaches, or None."""
    return route_list_active(kind=Route.Kind.WIDGET_KEY).filter(address=key).first()


def widget_route_for_agent(slug: str) -> Route | None:
    """An agent's oldest active widget key (the admin's "Try this agent" link), or None."""
    return route_list_active(kind=Route.Kind.WIDGET_KEY).filter(agent__slug=slug).order_by("created_at").first()


def phone_route_for_number(number: str) -> Route | None:
    """The route a dialed number reaches (Twilio's `To`, compared in E.164), or None."""
    normalized = phone_or_none(number)
    return route_list_active(kind=Route.Kind.PHONE_NUMBER).filter(address=normalized).first() if normalized else None
