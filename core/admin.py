"""Admin pieces shared by every app."""

import csv

from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_safe(value) -> str:
    # Spreadsheet apps run cells starting with these as formulas (CSV injection).
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@admin.action(description="Export selected rows to CSV")
def export_as_csv(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset):
    """Stream every concrete field of the selected rows; foreign keys as their ids."""
    opts = modeladmin.model._meta
    fields = [f for f in opts.concrete_fields]
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow([f.attname for f in fields])
        for obj in queryset.iterator(chunk_size=500):
            yield writer.writerow([_csv_safe(getattr(obj, f.attname)) for f in fields])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    filename = f"{opts.model_name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CrmModelAdmin(admin.ModelAdmin):
    """Base for every CRM admin: CSV export of selected rows."""

    actions = [export_as_csv]


class ReadOnlyInline(admin.TabularInline):
    """A list of related rows shown on a parent page; edited elsewhere or never."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
