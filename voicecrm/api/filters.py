"""Query parameters: a FilterSet per list, so a bad value is a 400 naming the parameter, and the
strict `?search=` and `?ordering=` every list has (REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]).

(A raw .filter() turned "abc" for an id, an unparsable phone or a NUL byte into a 500; DRF's own
search and ordering filters drop an ordering field they do not know and answer 200.)
"""

import datetime as dt

from django import forms
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from rest_framework import filters as drf_filters
from rest_framework.exceptions import ValidationError

from agents.models import AgentConfig
from calls.models import Call
from core.phones import normalize_phone
from customers.models import Customer


class PhoneFormField(forms.CharField):
    """Reads a phone number in any format into E.164, as Customer.phone stores it."""

    def to_python(self, value):
        return normalize_phone(super().to_python(value))


class PhoneFilter(filters.CharFilter):
    field_class = PhoneFormField


class IdFilter(filters.NumberFilter):
    """A row id: a whole number in PostgreSQL's bigint range (NumberFilter alone takes decimals)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, moved to UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO allows
    ("…T10:00+16:30" was a 500), and a time whose UTC is before year 1 is no time at all."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or timezone.is_naive(parsed):
            return parsed
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time between years 1 and 9999.", code="invalid") from None


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, through UtcIsoDateTimeField: use this one."""

    field_class = UtcIsoDateTimeField


class CustomerFilter(filters.FilterSet):
    phone = PhoneFilter()
    account_number = filters.CharFilter()

    class Meta:
        model = Customer
        fields = ["phone", "account_number"]


class CallFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer")
    agent = filters.ModelChoiceFilter(field_name="agent", to_field_name="slug", queryset=AgentConfig.objects.all(),
                                      help_text="The agent's slug.")
    started_after = IsoDateTimeFilter(field_name="started_at", lookup_expr="gte",
                                      help_text="Calls that started at or after this time (ISO 8601).")
    started_before = IsoDateTimeFilter(field_name="started_at", lookup_expr="lt",
                                       help_text="Calls that started before this time (ISO 8601).")

    class Meta:
        model = Call
        # status, channel, direction and analysis_status are choices (an unknown value is a 400);
        # intent and outcome are free text.
        fields = ["status", "channel", "direction", "intent", "outcome", "analysis_status", "customer", "agent"]


class SearchFilter(drf_filters.SearchFilter):
    """`?search=`: words that must each appear (case-insensitively) in one of the view's `search_fields`.

    Strict where DRF is lenient: a list that declares no `search_fields` answers a search with a
    400 instead of the whole list, and a NUL byte (which PostgreSQL refuses) or a search longer
    than MAX_LENGTH or with more than MAX_TERMS words (each word is one more OR over every field)
    is a 400 naming `search`.
    """

    MAX_LENGTH = 200
    MAX_TERMS = 10

    def get_search_terms(self, request) -> list[str]:
        value = request.query_params.get(self.search_param, "")
        if len(value) > self.MAX_LENGTH:
            raise ValidationError({self.search_param: [f"At most {self.MAX_LENGTH} characters."]})
        try:
            terms = super().get_search_terms(request)
        except ValidationError as error:  # DRF's CharField: "Null characters are not allowed."
            raise ValidationError({self.search_param: error.detail}) from None
        if len(terms) > self.MAX_TERMS:
            raise ValidationError({self.search_param: [f"At most {self.MAX_TERMS} words."]})
        return terms

    def filter_queryset(self, request, queryset, view):
        if request.query_params.get(self.search_param, "").strip() and not self.get_search_fields(view, request):
            raise ValidationError({self.search_param: ["This list cannot be searched."]})
        return super().filter_queryset(request, queryset, view)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        fields = getattr(view, "search_fields", None)
        if not fields:
            return []
        names = ", ".join(field.lstrip("^=@$").replace("__", " ") for field in fields)
        return [{
            "name": self.search_param, "required": False, "in": "query",
            "description": f"Words that must each appear (any case) in one of: {names}.",
            "schema": {"type": "string", "maxLength": self.MAX_LENGTH},
        }]


class OrderingFilter(drf_filters.OrderingFilter):
    """`?ordering=name,-created_at`: the view's `ordering_fields`, `-` for descending.

    Strict where DRF is lenient: a field the view does not list (DRF drops it silently) and any
    ordering of a view that lists none (DRF would then allow every serializer field) are a 400
    naming `ordering`. The primary key is added as the last key, so rows that tie keep one order
    and pages neither repeat nor skip them.
    """

    def get_valid_fields(self, queryset, view, context=None) -> list[tuple[str, str]]:
        fields = getattr(view, "ordering_fields", None) or ()
        return [(field, field) for field in fields]

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get(self.ordering_param, "")
        terms = [term.strip() for term in value.split(",") if term.strip()]
        if not terms:
            return self.get_default_ordering(view)
        valid = [name for name, _label in self.get_valid_fields(queryset, view)]
        if not valid:
            raise ValidationError({self.ordering_param: ["This list cannot be ordered."]})
        unknown = [term for term in terms if term.removeprefix("-") not in valid]
        if unknown:
            raise ValidationError({self.ordering_param: [
                f"Unknown field {', '.join(unknown)}; order by {', '.join(valid)} (with - for descending)."]})
        if not {"pk", "-pk", "id", "-id"} & set(terms):
            terms.append("pk")
        return terms

    def get_schema_operation_parameters(self, view) -> list[dict]:
        fields = getattr(view, "ordering_fields", None)
        if not fields:
            return []
        return [{
            "name": self.ordering_param, "required": False, "in": "query",
            "description": "Comma-separated fields to order by, `-` first for descending.",
            "style": "form", "explode": False,
            "schema": {"type": "array", "items": {"type": "string",
                                                  "enum": [f"{sign}{field}" for field in fields for sign in ("", "-")]}},
        }]
