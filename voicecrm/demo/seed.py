"""Idempotent demo data: every row is keyed on a stable natural key, so a second run changes nothing."""

import datetime as dt
import random
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from agents.models import AgentConfig, KnowledgeEntry
from calls.models import Call, Turn
from customers.models import Appointment, Customer, OpeningHours, Order, Service
from telephony.models import Route
from tickets.models import SlaPolicy, Ticket
from voicecrm.demo.agents import DEMO_AGENTS, KNOWLEDGE

FIRST_NAMES = [
    "James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "William", "Elizabeth",
    "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Nancy", "Wei",
    "Priya", "Ahmed", "Olga", "Kenji", "Fatima", "Liam", "Amara", "Noah", "Sofia",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Chen",
    "Patel", "Khan", "Ivanova", "Tanaka", "Okafor", "Murphy", "Nguyen", "Schmidt", "Rossi",
]
COMPANIES = ["", "", "", "Acme Logistics", "Blue Ridge Dental", "Harbor Freight Lines", "Sunrise Bakery", "Keystone Legal"]
ZIPS = ["94103", "94110", "10001", "60614", "73301", "98101", "30301", "02139", "80202", "33101"]
SERVICES = [
    ("consultation", "Consultation", 30, 2, "0.00"),
    ("installation", "Fiber installation", 120, 3, "99.00"),
    ("repair-visit", "Repair visit", 60, 2, "49.00"),
]
SLA = [("urgent", 15, 240), ("high", 60, 480), ("normal", 240, 1440), ("low", 1440, 4320)]
CUSTOMER_COUNT = 60


def _customers(rng: random.Random) -> list[Customer]:
    customers = []
    for n in range(CUSTOMER_COUNT):
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n * 7) % len(LAST_NAMES)]
        plan = rng.choice(Customer.Plan.values)
        balance = Decimal(rng.choice([0, 0, 0, 12.5, 45, 79.99, 120, 310.4, -20])).quantize(Decimal("0.01"))
        customer, _ = Customer.objects.get_or_create(
            account_number=str(10001 + n),
            defaults={
                "first_name": first,
                "last_name": last,
                "phone": f"+1415555{1000 + n:04d}",
                "email": f"{first}.{last}{n}@example.com".lower(),
                "company": rng.choice(COMPANIES),
                "plan": plan,
                "balance": balance,
                "status": rng.choices(Customer.Status.values, weights=[1, 12, 1, 1])[0],
                "date_of_birth": dt.date(1950 + rng.randrange(50), rng.randrange(1, 13), rng.randrange(1, 29)),
                "postcode": rng.choice(ZIPS),
            },
        )
        customers.append(customer)
    return customers


def _services() -> list[Service]:
    services = []
    for slug, name, minutes, capacity, price in SERVICES:
        service, created = Service.objects.get_or_create(
            slug=slug, defaults={"name": name, "duration_minutes": minutes, "capacity": capacity, "price": Decimal(price)}
        )
        if created:
            for weekday in range(5):
                OpeningHours.objects.create(service=service, weekday=weekday, opens=dt.time(9), closes=dt.time(17))
            OpeningHours.objects.create(service=service, weekday=5, opens=dt.time(10), closes=dt.time(14))
        services.append(service)
    return services


def _next_weekday_at(days_ahead: int, hour: int) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def _appointments(rng: random.Random, customers: list[Customer], services: list[Service]) -> None:
    for n, customer in enumerate(customers[:20]):
        service = services[n % len(services)]
        starts_at = _next_weekday_at(1 + n % 10, 9 + n % 6)
        status = Appointment.Status.COMPLETED if n % 7 == 0 else Appointment.Status.BOOKED
        # Keyed on customer and service: a rerun on another day leaves the row alone.
        Appointment.objects.get_or_create(
            customer=customer, service=service, notes="Demo booking",
            defaults={"starts_at": starts_at, "ends_at": starts_at + service.duration, "status": status},
        )


def _orders(rng: random.Random, customers: list[Customer]) -> None:
    catalogue = [("RTR-AX3000", "Wi-Fi 6 router", "129.00"), ("MESH-2", "Mesh extender", "89.00"),
                 ("CBL-CAT6", "Ethernet cable", "9.99"), ("PHN-DECT", "Cordless phone", "49.50")]
    for n, customer in enumerate(customers[:40]):
        sku, name, price = catalogue[n % len(catalogue)]
        qty = 1 + n % 2
        Order.objects.get_or_create(
            number=f"NW{50001 + n}",
            defaults={
                "customer": customer,
                "items": [{"sku": sku, "name": name, "qty": qty, "price": price}],
                "total": Decimal(price) * qty,
                "status": rng.choice(Order.Status.values[:4]),
                "tracking_number": f"1Z{rng.randrange(10**9):09d}" if n % 3 else "",
                "placed_at": timezone.now() - dt.timedelta(days=n % 20, hours=n),
            },
        )


def _tickets(customers: list[Customer]) -> None:
    samples = [
        ("billing", "normal", "Charged twice for March"), ("technical", "high", "Internet drops every evening"),
        ("account", "low", "Update billing address"), ("complaint", "high", "Technician missed appointment"),
        ("technical", "urgent", "Total outage on business line"), ("sales", "low", "Interested in fiber upgrade"),
        ("cancellation", "normal", "Wants to cancel after move"), ("billing", "normal", "Late fee dispute"),
    ]
    for n, (category, priority, subject) in enumerate(samples * 2):
        customer = customers[n * 3]
        if Ticket.objects.filter(customer=customer, subject=subject).exists():
            continue
        ticket = Ticket(customer=customer, subject=subject, category=category, priority=priority,
                        description=f"Demo ticket: {subject.lower()}.",
                        created_at=timezone.now() - dt.timedelta(hours=6 * n))
        ticket.apply_sla()
        ticket.set_status(["new", "open", "pending", "resolved"][n % 4])
        ticket.save()


def _agents() -> list[AgentConfig]:
    agents = []
    for spec in DEMO_AGENTS:
        agent, _ = AgentConfig.objects.get_or_create(slug=spec["slug"], defaults={k: v for k, v in spec.items() if k != "slug"})
        if not agent.flow and spec.get("flow"):
            # Agents seeded before flows existed get theirs; a flow a supervisor edited is kept.
            agent.flow = spec["flow"]
            agent.save(update_fields=["flow"])
        agents.append(agent)
        Route.objects.get_or_create(
            kind=Route.Kind.WIDGET_KEY, address=f"demo-{agent.slug}",
            defaults={"agent": agent, "label": f"Demo widget for {agent.name}",
                      "allowed_origins": "http://127.0.0.1:8000\nhttp://localhost:8000"},
        )
    for n, agent in enumerate(agents):
        Route.objects.get_or_create(kind=Route.Kind.PHONE_NUMBER, address=f"+1415555020{n}", defaults={"agent": agent})
        Route.objects.get_or_create(kind=Route.Kind.ASTERISK_EXTENSION, address=f"70{n}", defaults={"agent": agent})
    for title, answer, tags in KNOWLEDGE:
        KnowledgeEntry.objects.get_or_create(title=title, defaults={"answer": answer, "tags": tags})
    return agents


PAST_CALLS = [
    ("support", 0, "billing_balance", [
        ("agent", "Thanks for calling Northwind support, this is Joe. How can I help you today?"),
        ("caller", "Hi, I'd like to know my balance please."),
        ("agent", "Sure. Can you tell me your account number?"),
        ("caller", "It's one zero zero zero one."),
        ("agent", "Thanks James. Your balance is twelve dollars and fifty cents. Anything else?"),
        ("caller", "No that's all, thanks."),
        ("agent", "Thanks for calling Northwind. Have a great day, goodbye!"),
    ]),
    ("dispatch", 5, "driver_check_in", [
        ("agent", "Hi, this is dispatch check-in. What's your status right now?"),
        ("caller", "I'm running about an hour late, traffic on I-80 near Reno."),
        ("agent", "Got it, delayed by traffic near Reno. What's your new ETA?"),
        ("caller", "Around four thirty this afternoon."),
        ("agent", "Thanks, drive safe. Goodbye!"),
    ]),
    ("reception", 9, "book_appointment", [
        ("agent", "Good day, you've reached the Northwind front desk. How can I help?"),
        ("caller", "I need to book a repair visit for tomorrow morning."),
        ("agent", "I have ten a.m. tomorrow available. Shall I book it?"),
        ("caller", "Yes please."),
        ("agent", "Done. You're booked for a repair visit tomorrow at ten. Goodbye!"),
    ]),
]


def _past_calls(customers: list[Customer]) -> None:
    agents = {a.slug: a for a in AgentConfig.objects.all()}
    for n, (slug, customer_index, intent, turns) in enumerate(PAST_CALLS):
        customer = customers[customer_index]
        started = timezone.now() - dt.timedelta(days=n + 1, hours=2)
        call, created = Call.objects.get_or_create(
            channel=Call.Channel.API, provider_call_id=f"demo-call-{n + 1}",
            defaults={
                "customer": customer, "agent": agents[slug], "agent_version": agents[slug].version,
                "from_number": customer.phone, "status": Call.Status.COMPLETED, "end_reason": "agent_end",
                "started_at": started, "answered_at": started, "ended_at": started + dt.timedelta(seconds=15 * len(turns)),
                "duration_seconds": 15.0 * len(turns), "intent": intent,
            },
        )
        if not created:
            continue
        for index, (speaker, text) in enumerate(turns):
            Turn.objects.create(call=call, index=index, speaker=speaker, text=text,
                                start_ms=index * 15000, end_ms=index * 15000 + 4000)


@transaction.atomic
def seed_demo() -> dict[str, int]:
    rng = random.Random(20261121)  # fixed seed: the same data on every machine
    for priority, respond, resolve in SLA:
        SlaPolicy.objects.get_or_create(priority=priority, defaults={"first_response_minutes": respond, "resolution_minutes": resolve})
    customers = _customers(rng)
    services = _services()
    _appointments(rng, customers, services)
    _orders(rng, customers)
    _tickets(customers)
    _agents()
    _past_calls(customers)
    return seed_counts()


def seed_counts() -> dict[str, int]:
    models = [Customer, Service, OpeningHours, Appointment, Order, Ticket, SlaPolicy, AgentConfig, KnowledgeEntry,
              Route, Call, Turn]
    return {model._meta.verbose_name_plural: model.objects.count() for model in models}
