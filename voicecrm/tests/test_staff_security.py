"""Staff roles hold on every staff path; the admin sign-in; the audit log (docs/security.md,
"Staff roles, admin sign-in and the audit log")."""

import time

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from agents.models import AgentConfig
from agents.permissions import TOOL_PERMISSIONS
from agents.tools import REGISTRY
from calls.models import WebhookEndpoint
from customers.models import Customer
from customers.tests.factories import CustomerFactory
from telephony.models import Route

pytestmark = pytest.mark.django_db


@pytest.fixture
def roleless(django_user_model):
    """Staff without a role: may open the admin, and nothing in it."""
    return django_user_model.objects.create_user("rita", "rita@example.com", "rita-password-123", is_staff=True)


# --- CSV import ------------------------------------------------------------------------------------

CSV = "account_number,first_name,last_name,phone,email,plan,balance,status,postcode\n30001,Ann,Lee,(415) 555-0111,ann@example.com,basic,10.00,active,94103\n"


def test_csv_import_needs_the_add_permission(client, alice, bob, charlie, roleless):
    # A preview a superuser made, so the refused users have a valid confirmation to post.
    client.force_login(alice)
    preview = client.post(reverse("admin:customers_customer_import"), {
        "import_file": SimpleUploadedFile("customers.csv", CSV.encode(), content_type="text/csv"), "format": "0", "resource": "0",
    })
    confirmation = preview.context["confirm_form"].initial
    for user in (charlie, roleless):
        client.force_login(user)
        assert client.get(reverse("admin:customers_customer_import")).status_code == 403
        assert client.post(reverse("admin:customers_customer_process_import"), confirmation).status_code == 403
        assert b"/import/" not in client.get(reverse("admin:customers_customer_changelist")).content
    assert not Customer.objects.exists()
    client.force_login(bob)  # an Agent adds customers
    assert client.get(reverse("admin:customers_customer_import")).status_code == 200
    assert client.post(reverse("admin:customers_customer_process_import"), confirmation).status_code == 302
    assert Customer.objects.get().first_name == "Ann"


# --- Dashboard --------------------------------------------------------------------------------------


def test_the_dashboard_needs_view_permissions(client, roleless, charlie):
    client.force_login(roleless)
    assert client.get(reverse("dashboard")).status_code == 403
    assert client.get(reverse("dashboard-panels")).status_code == 403
    client.force_login(charlie)
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get(reverse("dashboard-panels")).status_code == 200


# --- The chat's tool permissions --------------------------------------------------------------------


def test_every_tool_says_which_permissions_it_needs():
    assert set(TOOL_PERMISSIONS) == set(REGISTRY)
    known = {f"{app}.{codename}" for app, codename in Permission.objects.values_list("content_type__app_label", "codename")}
    assert set().union(*TOOL_PERMISSIONS.values()) <= known


def test_roles_hold_the_chat_permissions(sam, bob, charlie):
    assert sam.has_perm("agents.chat_with_agent") and sam.has_perm("agents.chat_as_caller")
    assert bob.has_perm("agents.chat_with_agent") and not bob.has_perm("agents.chat_as_caller")
    assert not charlie.has_perm("agents.chat_with_agent")


# --- User administration -------------------------------------------------------------------------


def user_form(user: User, **changes) -> dict:
    """The admin change form of `user` as a browser would post it."""
    data = {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
        "is_active": "on", "is_staff": "on", "groups": [g.pk for g in user.groups.all()], "user_permissions": [],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"), "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "", "last_login_1": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_a_supervisor_cannot_make_itself_superuser(client, sam):
    client.force_login(sam)
    page = client.get(reverse("admin:auth_user_change", args=[sam.pk]))
    assert page.status_code == 200 and b'name="is_superuser"' not in page.content
    response = client.post(reverse("admin:auth_user_change", args=[sam.pk]), user_form(sam, is_superuser="on"))
    assert response.status_code == 302
    sam.refresh_from_db()
    assert not sam.is_superuser


def test_a_supervisor_cannot_change_users_who_hold_more(client, sam, alice):
    client.force_login(sam)
    page = client.get(reverse("admin:auth_user_change", args=[alice.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content  # read only
    assert client.post(reverse("admin:auth_user_change", args=[alice.pk]), user_form(alice, email="sam@example.com")).status_code == 403
    assert client.post(reverse("admin:auth_user_password_change", args=[alice.pk]),
                       {"password1": "taken-over-123!", "password2": "taken-over-123!"}).status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"}).status_code == 403
    alice.refresh_from_db()
    assert alice.email == "alice@example.com" and alice.check_password("alice-password-123")


def test_a_supervisor_grants_only_what_it_holds(client, sam, bob):
    admins = Group.objects.create(name="Admins")
    admins.permissions.add(Permission.objects.get(codename="change_group"))
    agent_group = Group.objects.get(name="Agent")
    client.force_login(sam)
    response = client.post(reverse("admin:auth_user_change", args=[bob.pk]), user_form(bob, groups=[admins.pk]))
    assert response.status_code == 200 and "groups" in response.context["adminform"].form.errors
    token_perm = Permission.objects.filter(content_type__app_label__in=["authtoken", "knox"]).first()
    if token_perm is not None:
        response = client.post(reverse("admin:auth_user_change", args=[bob.pk]), user_form(bob, user_permissions=[token_perm.pk]))
        assert "user_permissions" in response.context["adminform"].form.errors
    assert list(bob.groups.all()) == [agent_group]
    # Within its own permissions it manages users: make bob a Viewer instead.
    viewer = Group.objects.get(name="Viewer")
    response = client.post(reverse("admin:auth_user_change", args=[bob.pk]), user_form(bob, groups=[viewer.pk]))
    assert response.status_code == 302 and list(bob.groups.all()) == [viewer]


def test_groups_and_api_tokens_are_for_superusers(client, sam):
    assert not [perm for perm in sam.get_all_permissions() if perm.startswith(("authtoken.", "knox.", "auth.change_group", "auth.add_group"))]
    client.force_login(sam)
    supervisor = Group.objects.get(name="Supervisor")
    assert client.post(reverse("admin:auth_group_change", args=[supervisor.pk]), {"name": "Supervisor", "permissions": []}).status_code == 403
    assert supervisor.permissions.exists()
    for model in admin.site._registry:
        if model._meta.app_label in ("authtoken", "knox"):
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 403


# --- Admin sign-in: lockout and one-time codes ---------------------------------------------------------


def sign_in(client, username: str, password: str, ip: str = "10.1.1.1", **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def test_repeated_failures_lock_out_that_username_from_that_address(client, sam, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "sam", "wrong").status_code == 200
    assert sign_in(client, "sam", "wrong").status_code == 429
    # Locked out: the right password no longer works from there...
    assert sign_in(client, "sam", "sam-password-123").status_code == 429
    assert "_auth_user_id" not in client.session
    # ...but does from another address, and another user is not affected.
    assert sign_in(client, "sam", "sam-password-123", ip="10.2.2.2").status_code == 302
    client.logout()
    assert sign_in(client, "alice", "alice-password-123").status_code == 302


def test_the_api_token_login_shares_the_lockout(sam, settings):
    api = APIClient()

    def api_sign_in(password: str, ip: str = "10.3.3.3") -> int:
        cache.clear()  # the login throttle (API_THROTTLE_LOGIN) is another defence, not this one
        return api.post("/api/auth/login/", {"username": "sam", "password": password}, format="json", REMOTE_ADDR=ip).status_code

    assert [api_sign_in("wrong") for _ in range(settings.AXES_FAILURE_LIMIT)] == [400] * settings.AXES_FAILURE_LIMIT
    assert api_sign_in("sam-password-123") == 400
    assert api_sign_in("sam-password-123", ip="10.4.4.4") == 200


def totp_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def test_a_user_with_a_device_signs_in_with_a_one_time_code(client, sam):
    device = TOTPDevice.objects.create(user=sam, name="phone", confirmed=True)
    response = sign_in(client, "sam", "sam-password-123")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert b"one-time code" in response.content
    assert sign_in(client, "sam", "sam-password-123", otp_token=totp_code(device)).status_code == 302
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    client.logout()
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    response = sign_in(client, "sam", "sam-password-123", otp_token=wrong)
    assert response.status_code == 200 and "_auth_user_id" not in client.session


@override_settings(ADMIN_REQUIRE_OTP=True)
def test_with_admin_require_otp_supervisors_need_a_device(client, sam, bob):
    response = sign_in(client, "sam", "sam-password-123")
    assert response.status_code == 200 and b"has no device yet" in response.content
    assert "_auth_user_id" not in client.session
    assert sign_in(client, "bob", "bob-password-123").status_code == 302  # an Agent signs in with a password


# --- Audit log ------------------------------------------------------------------------------------------


def test_the_audited_models_are_registered():
    for model in (Customer, AgentConfig, Route, WebhookEndpoint, User):
        assert auditlog.contains(model), model


def test_an_admin_change_is_logged_with_who_made_it(client, sam):
    customer = CustomerFactory(first_name="Ada")
    client.force_login(sam)
    data = {
        "account_number": customer.account_number, "first_name": "Adele", "last_name": customer.last_name,
        "phone": customer.phone, "email": customer.email, "company": customer.company, "plan": customer.plan,
        "status": customer.status, "balance": str(customer.balance), "notes": "",
        "date_of_birth": "", "postcode": customer.postcode,
    }
    for prefix in ("appointments", "orders"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    for formset in page.context["inline_admin_formsets"]:
        data.update({f"{formset.formset.prefix}-TOTAL_FORMS": "0", f"{formset.formset.prefix}-INITIAL_FORMS": "0"})
    response = client.post(reverse("admin:customers_customer_change", args=[customer.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    entry = LogEntry.objects.get_for_object(customer).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == sam and entry.changes_dict["first_name"] == ["Ada", "Adele"]


def test_an_api_change_is_logged_with_who_made_it(bob):
    customer = CustomerFactory(first_name="Ada")
    api = APIClient()
    # The API authenticates inside the view (token or session), after every middleware ran.
    api.force_authenticate(bob)
    response = api.patch(f"/api/customers/{customer.pk}/", {"first_name": "Adele"}, format="json")
    assert response.status_code == 200, response.content
    entry = LogEntry.objects.get_for_object(customer).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == bob


def test_webhook_secrets_stay_out_of_the_log(alice):
    endpoint = WebhookEndpoint.objects.create(name="CRM", url="https://hooks.example.com/in")
    entry = LogEntry.objects.get_for_object(endpoint).get()
    assert "secret" not in entry.changes_dict and endpoint.secret not in str(entry.changes)


def test_supervisors_read_the_log_and_nobody_edits_it(client, sam, charlie):
    CustomerFactory()
    entry = LogEntry.objects.first()
    client.force_login(sam)
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 200
    assert client.get(reverse("admin:auditlog_logentry_add")).status_code == 403
    assert client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    client.force_login(charlie)
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403


def test_the_admin_offers_no_plain_api_tokens(client, alice):
    client.force_login(alice)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert client.get("/admin/knox/authtoken/").status_code == 200  # the hashed tokens, for superusers
