from django.contrib import admin

from calls.admin import CallAdmin
from core.admin import CrmModelAdmin
from telephony.chat.conversations import make_regression_test
from telephony.models import Route


@admin.register(Route)
class RouteAdmin(CrmModelAdmin):
    list_display = ["address", "kind", "agent", "label", "active", "created_at"]
    list_filter = ["kind", "active", "agent"]
    search_fields = ["address", "label", "agent__name"]
    list_select_related = ["agent"]


# A call replays as a scripted conversation of the text channel (telephony/chat/conversations.py).
CallAdmin.actions = [*CallAdmin.actions, make_regression_test]
