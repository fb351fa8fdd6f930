from django.contrib import admin, messages
from django.template.response import TemplateResponse

from calls.admin import CallAdmin
from core.admin import CrmModelAdmin
from customers.admin import CustomerAdmin
from telephony.chat.conversations import make_regression_test
from telephony.forms import CallNowForm
from telephony.models import Route
from telephony.outbound import OutboundError, outbound_call_place


@admin.register(Route)
class RouteAdmin(CrmModelAdmin):
    list_display = ["address", "kind", "agent", "label", "active", "created_at"]
    list_filter = ["kind", "active", "agent"]
    search_fields = ["address", "label", "agent__name"]
    list_select_related = ["agent"]


# A call replays as a scripted conversation of the text channel (telephony/chat/conversations.py).
CallAdmin.actions = [*CallAdmin.actions, make_regression_test]


@admin.action(description="Call now (an agent phones the selected customers)", permissions=["place_call"])
def call_now(modeladmin, request, queryset):
    """Asks which agent calls and with what context, then places one outbound call per customer."""
    customers = list(queryset.order_by("pk"))
    form = CallNowForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        placed, refused = 0, []
        for customer in customers:
            variables = {"first_name": customer.first_name, **form.cleaned_data["variables"]}
            try:
                outbound_call_place(agent=form.cleaned_data["agent"], to=customer.phone, variables=variables)
                placed += 1
            except OutboundError as error:
                refused.append(f"{customer}: {'; '.join(error.messages)}")
        if placed:
            modeladmin.message_user(request, f"Placed {placed} call(s); they are being dialed.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, f"Not called: {line}", messages.ERROR)
        return None
    return TemplateResponse(request, "admin/telephony/call_now.html", {
        **modeladmin.admin_site.each_context(request), "title": "Call now", "form": form, "customers": customers,
        "opts": modeladmin.model._meta,
    })


def _has_place_call_permission(self, request) -> bool:
    return request.user.has_perm("calls.place_call")


# Customers know nothing of telephony (dependencies point down): the action is added from here.
CustomerAdmin.has_place_call_permission = _has_place_call_permission
CustomerAdmin.actions = [*CustomerAdmin.actions, call_now]
