from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, render

from agents.models import AgentConfig


@staff_member_required
def agent_list(request):
    agents = AgentConfig.objects.filter(active=True).order_by("name")
    return render(request, "agents/agent_list.html", {**admin.site.each_context(request), "title": "Try an agent", "agents": agents})


@staff_member_required
def chat(request, slug: str):
    agent = get_object_or_404(AgentConfig, slug=slug, active=True)
    return render(request, "agents/chat.html", {
        **admin.site.each_context(request), "title": f"Chat with {agent.name}", "agent": agent,
        "caller": request.GET.get("caller", "")[:32],
    })
