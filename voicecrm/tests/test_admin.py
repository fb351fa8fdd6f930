import pytest
from django.contrib import admin
from django.urls import reverse

from calls.models import Call
from customers.models import Customer
from voicecrm.demo.seed import seed_demo

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


@pytest.fixture
def demo():
    seed_demo()


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_every_admin_page_renders_for_a_superuser(client, alice, demo, model):
    client.force_login(alice)
    assert client.get(admin_url(model, "changelist")).status_code == 200
    assert client.get(admin_url(model, "changelist"), {"q": "smith"}).status_code == 200
    assert client.get(admin_url(model, "add")).status_code in (200, 403)
    obj = model._default_manager.first()
    if obj is not None:
        assert client.get(admin_url(model, "change", obj.pk)).status_code == 200


def test_viewer_can_read_but_not_change(client, charlie, demo):
    client.force_login(charlie)
    customer = Customer.objects.first()
    assert client.get(admin_url(Customer, "changelist")).status_code == 200
    page = client.get(admin_url(Customer, "change", customer.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(admin_url(Customer, "add")).status_code == 403
    response = client.post(admin_url(Customer, "change", customer.pk), {"first_name": "Mallory"})
    assert response.status_code == 403
    assert client.post(admin_url(Customer, "delete", customer.pk), {"post": "yes"}).status_code == 403
    customer.refresh_from_db()
    assert customer.first_name != "Mallory"


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_viewer_cannot_add_anything(client, charlie, demo, model):
    client.force_login(charlie)
    assert client.get(admin_url(model, "add")).status_code == 403


def test_agent_edits_customers_but_only_reads_calls(client, bob, demo):
    client.force_login(bob)
    assert client.get(admin_url(Customer, "add")).status_code == 200
    call = Call.objects.first()
    page = client.get(admin_url(Call, "change", call.pk))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(admin_url(Call, "add")).status_code == 403


def test_call_page_shows_turns_in_order_with_timings(client, alice, demo):
    client.force_login(alice)
    call = Call.objects.filter(turns__isnull=False).first()
    html = client.get(admin_url(Call, "change", call.pk)).content.decode()
    texts = [t.text for t in call.turns.order_by("index")]
    positions = [html.index(text.replace("'", "&#x27;")) for text in texts]
    assert positions == sorted(positions)
    assert "Voice to voice ms" in html


def test_export_selected_rows_to_csv(client, alice, demo):
    client.force_login(alice)
    ids = list(Customer.objects.values_list("pk", flat=True)[:3])
    response = client.post(
        admin_url(Customer, "changelist"), {"action": "export_as_csv", "_selected_action": ids}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("id,account_number,first_name")
    assert len(lines) == 4
