import datetime as dt
from decimal import Decimal

import factory

from customers.models import Appointment, Customer, OpeningHours, Order, Service


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    account_number = factory.Sequence(lambda n: str(20001 + n))
    first_name = factory.Sequence(lambda n: f"Ada{n}")
    last_name = "Lovelace"
    phone = factory.Sequence(lambda n: f"+1415555{2000 + n:04d}")
    email = factory.LazyAttribute(lambda c: f"{c.first_name.lower()}@example.com")
    balance = Decimal("42.50")
    postcode = "94103"
    date_of_birth = dt.date(1985, 5, 5)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Repair visit {n}")
    slug = factory.Sequence(lambda n: f"repair-{n}")
    duration_minutes = 60
    capacity = 1

    @factory.post_generation
    def weekdays_nine_to_five(service, create, extracted, **kwargs):
        if create and extracted is not False:
            for weekday in range(7):
                OpeningHours.objects.create(service=service, weekday=weekday, opens=dt.time(9), closes=dt.time(17))


class AppointmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appointment

    customer = factory.SubFactory(CustomerFactory)
    service = factory.SubFactory(ServiceFactory)
    starts_at = factory.LazyFunction(lambda: dt.datetime(2030, 1, 7, 10, tzinfo=dt.UTC))
    ends_at = factory.LazyAttribute(lambda a: a.starts_at + dt.timedelta(minutes=a.service.duration_minutes))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"ORD{1000 + n}")
    customer = factory.SubFactory(CustomerFactory)
    items = [{"sku": "RTR", "name": "Router", "qty": 1, "price": "129.00"}]
    total = Decimal("129.00")
