"""The database side of the AudioSocket server: which call a connection's UUID names, the inbound
calls it starts itself, and what it records when it refuses or drops one.

The dialplan passes the UUID FastAGI (or ARI, for outbound calls) gave the call, its
`public_id`, so the call usually exists, prepared and not yet answered. A UUID that names no
call is a call that reached AudioSocket without FastAGI: it becomes a new inbound call to the
agent of the default extension (settings.AUDIOSOCKET_DEFAULT_EXTENSION). Synchronous ORM code:
the server runs it in a worker thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from agents.deterministic import voicemail_text as agent_voicemail_text
from agents.models import AgentConfig
from calls import services
from calls.models import Call
from telephony.models import Route
from telephony.selectors import route_list_active


@dataclass
class Target:
    """What a UUID names. `outcome`: "call" (serve `call` with `agent`), "ended" (a finished call
    or another channel's: close and write nothing), "no_route" (nobody to take it: refuse)."""

    outcome: str
    call: Call | None = None
    agent: AgentConfig | None = None
    route: Route | None = None  # for a new call: the extension it is booked to

    @property
    def prepared(self) -> bool:
        return self.call is not None and self.route is None


def audiosocket_default_route() -> Route | None:
    """The active asterisk_extension route whose address is AUDIOSOCKET_DEFAULT_EXTENSION, or with
    the setting empty the first active one by address."""
    routes = route_list_active(kind=Route.Kind.ASTERISK_EXTENSION)
    extension = settings.AUDIOSOCKET_DEFAULT_EXTENSION
    return (routes.filter(address=extension) if extension else routes.order_by("address")).first()


def audiosocket_target(*, call_uuid: uuid.UUID) -> Target:
    """Look the UUID up (reads only). A new call is not created here: `audiosocket_call_start`
    does that once the process has admitted the call."""
    calls = Call.objects.select_related("agent")
    # A call this server started itself carries the UUID as its provider id, so a second
    # connection with that UUID finds it (and, once it has ended, is refused).
    call = calls.filter(public_id=call_uuid).first() or calls.filter(
        channel=Call.Channel.ASTERISK, provider_call_id=str(call_uuid)).first()
    if call is not None:
        if call.channel != Call.Channel.ASTERISK or call.is_finished:
            return Target("ended", call)
        agent = call.agent if call.agent is not None and call.agent.active else None
        if agent is None:
            route = audiosocket_default_route()
            agent = route.agent if route is not None else None
        return Target("call", call, agent) if agent is not None else Target("no_route", call)
    route = audiosocket_default_route()
    if route is None:
        return Target("no_route")
    return Target("call", None, route.agent, route)


def audiosocket_call_start(*, target: Target, call_uuid: uuid.UUID) -> Call:
    """The Call of a connection that no FastAGI step prepared: inbound, to the default extension,
    in progress from now (the UUID is its provider id)."""
    return services.call_start(
        channel=Call.Channel.ASTERISK, agent=target.agent, direction=Call.Direction.INBOUND,
        to_number=target.route.address, provider_call_id=str(call_uuid),
    )


def audiosocket_call_refuse(*, call_id: int, reason: str) -> bool:
    """A prepared call the server could not take (busy, no agent) ends here, failed, instead of
    staying queued. True when this finalized it."""
    return services.call_finalize(call_id=call_id, status=Call.Status.FAILED, end_reason=reason)


def audiosocket_event_log(*, call_id: int, kind: str, name: str, payload: dict) -> None:
    """What went wrong on the line (a protocol error, an Asterisk error), on the call's timeline."""
    call = Call.objects.filter(pk=call_id).first()
    if call is not None:
        services.call_event_log(call=call, kind=kind, name=name, payload=payload)


def voicemail_text(call: Call, agent: AgentConfig) -> str:
    """The agent's voicemail message with the call's {context.<name>} variables filled in."""
    return agent_voicemail_text(agent, call.variables)
