from django.contrib import admin

from telephony.models import Route
from core.admin import CrmModelAdmin


@admin.register(Route)
class RouteAdmin(CrmModelAdmin):
    list_display = ["address", "kind", "agent", "label", "active", "created_at"]
    list_filter = ["kind", "active", "agent"]
    search_fields = ["address", "label", "agent__name"]
    list_select_related = ["agent"]
