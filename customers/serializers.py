from rest_framework import serializers

from customers.models import Appointment, Customer, Order, Service


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id", "account_number", "first_name", "last_name", "phone", "email", "company", "plan",
            "balance", "status", "postcode", "notes", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_phone(self, value: str) -> str:
        return Customer._meta.get_field("phone").to_python(value)


class ServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "name", "slug", "description", "duration_minutes", "capacity", "price", "active"]


class AppointmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appointment
        fields = ["id", "customer", "service", "starts_at", "ends_at", "status", "source_call", "notes", "created_at"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "number", "customer", "items", "total", "status", "tracking_number", "placed_at"]
