"""Information records: the facts callers shared (contact details, debts, qualification…), by
category. Read-only here: the post-call extraction writes them."""

from django.db.models import Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from calls.models import InformationRecord
from calls.serializers import InformationSerializer
from voicecrm.api.common import errors
from voicecrm.api.filters import IdFilter, PhoneFilter


class InformationFilter(filters.FilterSet):
    category = filters.CharFilter(max_length=48, help_text="e.g. contact_details, debt_info, qualification.")
    customer = IdFilter(help_text="The customer the fact was filed under.")
    caller = PhoneFilter(method="filter_caller", help_text="A phone number in any format: the number the call came "
                                                           "from, or the customer's number.")
    call = filters.UUIDFilter(field_name="call__public_id", help_text="The call's id (a UUID).")

    class Meta:
        model = InformationRecord
        fields = ["category", "customer", "caller", "call"]

    def filter_caller(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Q(call__from_number=value) | Q(customer__phone=value))


@extend_schema_view(
    list=extend_schema(description="Facts callers shared, newest first. Filter by "
                                   "`category`, `customer`, `caller` (phone number) and `call`; `?search=` over keys "
                                   "and values.", responses={200: InformationSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(description="One fact.", responses={200: InformationSerializer, **errors(404)}),
)
class InformationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = InformationRecord.objects.select_related("call")
    serializer_class = InformationSerializer
    filterset_class = InformationFilter
    search_fields = ["key", "value"]
    ordering_fields = ["created_at", "category", "key"]
    ordering = ["-created_at", "category", "key", "id"]
