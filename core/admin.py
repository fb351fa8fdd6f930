"""Admin pieces shared by every app."""

import csv
from collections.abc import Sequence

from django.contrib import admin
from django.core import checks
from django.core.exceptions import PermissionDenied
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


@admin.action(description="Export selected rows to CSV", permissions=["view"])
def export_as_csv(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset):
    """Stream every concrete field of the selected rows but the admin's `secret_fields`; foreign keys as their ids."""
    # Checked here too: the action list hides it without the permission, but a function can be called from anywhere.
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    opts = modeladmin.model._meta
    # Secrets stay out for everyone: a file leaves the permission system once downloaded.
    secret = set(getattr(modeladmin, "secret_fields", ()))
    fields = [f for f in opts.concrete_fields if f.name not in secret]
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
    """Base for every CRM admin: CSV export of selected rows.

    `secret_fields` names the fields (credentials, signing secrets) that no export ever contains.
    """

    actions = [export_as_csv]
    secret_fields: Sequence[str] = ()

    def check(self, **kwargs) -> list[checks.CheckMessage]:
        # A misspelt name would export the secret it meant to keep out: refuse to start instead.
        names = {f.name for f in self.model._meta.concrete_fields}
        return [*super().check(**kwargs), *(
            checks.Error(f"secret_fields names {name!r}, which is not a field of {self.model._meta.label}.",
                         obj=self.__class__, id="core.E001")
            for name in self.secret_fields if name not in names
        )]


class ReadOnlyInline(admin.TabularInline):
    """A list of related rows shown on a parent page; edited elsewhere or never."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
