from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from agents.models import AgentConfig
from agents.permissions import (
    CHAT_PERMISSION,
    agent_chat_as_caller_allowed,
    agent_chat_missing_permissions,
)


@staff_member_required
@permission_required(CHAT_PERMISSION, raise_exception=True)
def agent_list(request):
    agents = list(AgentConfig.objects.filter(active=True).order_by("name"))
    for agent in agents:
        agent.missing_permissions = agent_chat_missing_permissions(user=request.user, agent=agent)
    return render(request, "agents/agent_list.html", {**admin.site.each_context(request), "title": "Try an agent", "agents": agents})


@staff_member_required
def chat(request, slug: str):
    """The chat page; the websocket (telephony/chat/consumers.py) checks the same permissions."""
    agent = get_object_or_404(AgentConfig, slug=slug, active=True)
    if agent_chat_missing_permissions(user=request.user, agent=agent):
        raise PermissionDenied
    can_set_caller = agent_chat_as_caller_allowed(user=request.user)
    return render(request, "agents/chat.html", {
        **admin.site.each_context(request), "title": f"Chat with {agent.name}", "agent": agent,
        "can_set_caller": can_set_caller, "caller": request.GET.get("caller", "")[:32] if can_set_caller else "",
    })
