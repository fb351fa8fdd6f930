from django.conf import settings
from django.templatetags.static import static
from django.shortcuts import render
from django.views.decorators.http import require_GET

from telephony.browser import widget
from telephony.models import Route


@require_GET
def widget_demo(request):
    """Try a widget key on a page that embeds the widget exactly as a customer's site would.

    `?key=` picks a key, `?agent=<slug>` that agent's first active key (the admin's "Try this
    agent" link), `?mode=ptt` starts in push-to-talk. Staff (and everyone with DEBUG on) also
    get a picker of every active key; keys are public anyway, as they sit in customers' pages.
    """
    can_list = request.user.is_staff or settings.DEBUG
    routes = list(
        Route.objects.select_related("agent")
        .filter(kind=Route.Kind.WIDGET_KEY, active=True, agent__active=True)
        .order_by("agent__name", "address")
    ) if can_list else []
    key = request.GET.get("key", "").strip()
    agent_slug = request.GET.get("agent", "").strip()
    selected, problem = None, ""
    if key:
        selected = widget.widget_route_for(key)
        if selected is None:
            problem = f"There is no active widget key {key!r}."
    elif agent_slug:
        selected = (
            Route.objects.select_related("agent")
            .filter(kind=Route.Kind.WIDGET_KEY, active=True, agent__slug=agent_slug, agent__active=True)
            .order_by("created_at")
            .first()
        )
        if selected is None:
            problem = f"The agent {agent_slug!r} has no active widget key (or is inactive). Add one under Routes."
    elif routes:
        selected = routes[0]
    mode = request.GET.get("mode") if request.GET.get("mode") in widget.MODES else "continuous"
    page_origin = f"{request.scheme}://{request.get_host()}"
    script_url = request.build_absolute_uri(static("widget/voicecrm.js"))
    context = {
        "routes": routes,
        "selected": selected,
        "problem": problem,
        "mode": mode,
        "script_url": script_url,
        "origin_ok": selected is not None and widget.origin_allowed(selected, page_origin),
        "page_origin": page_origin,
    }
    return render(request, "telephony/widget_demo.html", context, status=404 if problem else 200)
