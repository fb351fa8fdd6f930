"""Query parameters: a FilterSet per list, so a bad value is a 400 naming the parameter.

(A raw .filter() turned "abc" for an id, an unparsable phone or a NUL byte into a 500.)
"""

from django import forms
from django_filters import rest_framework as filters

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


class CustomerFilter(filters.FilterSet):
    phone = PhoneFilter()
    account_number = filters.CharFilter()

    class Meta:
        model = Customer
        fields = ["phone", "account_number"]


class CallFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer")

    class Meta:
        model = Call
        # status and channel are choices (an unknown value is a 400); intent is free text.
        fields = ["status", "channel", "intent", "customer"]
