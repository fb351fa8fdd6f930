"""The REST API's shapes of customers, services, appointments and orders. Validation beyond shapes
is the models' and customers/services.py's, so the API, the admin and the agent's tools agree."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import Appointment, Customer, OpeningHours, Order, Service


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id", "account_number", "first_name", "last_name", "phone", "email", "company", "plan",
            "balance", "status", "postcode", "notes", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "account_number": {"required": False, "help_text": "5 to 10 digits; left out, a new random one."},
            "phone": {"help_text": "Any format; stored in E.164, e.g. +14155550123."},
            "status": {"help_text": "Left out on creation: active."},
        }

    def validate_phone(self, value: str) -> str:
        return Customer._meta.get_field("phone").to_python(value)


class OpeningHoursSerializer(serializers.ModelSerializer):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]


class ServiceSerializer(serializers.ModelSerializer):
    opening_hours = OpeningHoursSerializer(many=True, read_only=True,
                                           help_text="Weekday 0 is Monday; times in the business time zone.")

    class Meta:
        model = Service
        fields = ["id", "name", "slug", "description", "duration_minutes", "capacity", "price", "active",
                  "opening_hours"]


class AppointmentSerializer(serializers.ModelSerializer):
    # allow_null without a default: a missing call reads as null (a default would be skipped on PATCH).
    source_call = serializers.UUIDField(source="source_call.public_id", read_only=True, allow_null=True,
                                        help_text="The call that booked it, if any.")

    class Meta:
        model = Appointment
        fields = ["id", "customer", "service", "starts_at", "ends_at", "status", "source_call", "notes", "created_at",
                  "updated_at"]
        read_only_fields = fields


class AppointmentCreateSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.filter(active=True), help_text="An active service; its duration sets the end time.")
    starts_at = serializers.DateTimeField(help_text="In the future, inside the service's opening hours.")
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AppointmentRescheduleSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField(help_text="The new start; the service's duration sets the end.")


class AvailabilityQuerySerializer(serializers.Serializer):
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.filter(active=True))
    day = serializers.DateField(help_text="YYYY-MM-DD, in the business time zone.")


class SlotSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class AvailabilitySerializer(serializers.Serializer):
    service = serializers.IntegerField()
    day = serializers.DateField()
    slots = SlotSerializer(many=True, help_text="Free start times, soonest first; past ones are left out.")


class OrderItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=200)
    qty = serializers.IntegerField(min_value=1, max_value=10_000)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, help_text="Unit price.")


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": True}})
class OrderItemsField(serializers.JSONField):
    """The items as stored: orders written in the admin or imported may carry other keys."""


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemsField(read_only=True, help_text='[{"sku": "RTR", "name": "Router", "qty": 1, "price": "129.00"}]')

    class Meta:
        model = Order
        fields = ["id", "number", "customer", "items", "total", "status", "tracking_number", "placed_at"]
        read_only_fields = fields


class OrderCreateSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    items = OrderItemSerializer(many=True, required=False, max_length=100)
    total = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False,
                                     help_text="Left out: the sum of qty × price.")
    number = serializers.CharField(max_length=20, required=False, allow_blank=True, default="",
                                   help_text="3 to 20 letters and digits; left out, a new one (ORD and 8 digits).")
    status = serializers.ChoiceField(choices=Order.Status.choices, default=Order.Status.PENDING)
    tracking_number = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    placed_at = serializers.DateTimeField(required=False, help_text="Left out: now.")
