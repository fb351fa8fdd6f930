from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from telephony.browser import widget
from telephony.models import Route
from telephony.selectors import route_list_active, widget_route_for_agent, widget_route_for_key


@require_GET
def widget_demo(request):
    """Try a widget key on a page that embeds the widget exactly as a customer's site would.

    `?key=` picks a key, `?agent=<slug>` that agent's first active key (the admin's "Try this
    agent" link), `?mode=ptt` starts in push-to-talk, and a picker lists every active key. In
    production (DEBUG off) the page is for signed-in staff only: anyone who found the URL could
    otherwise list the keys and spend real calls on our speech workers.
    """
    if not settings.DEBUG and not (request.user.is_active and request.user.is_staff):
        return redirect_to_login(request.get_full_path())
    routes = list(route_list_active(kind=Route.Kind.WIDGET_KEY).order_by("agent__name", "address"))
    key = request.GET.get("key", "").strip()
    agent_slug = request.GET.get("agent", "").strip()
    selected, problem = None, ""
    if key:
        selected = widget_route_for_key(key)
        if selected is None:
            problem = f"There is no active widget key {key!r}."
    elif agent_slug:
        selected = widget_route_for_agent(agent_slug)
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
