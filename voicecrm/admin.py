"""User administration and the admin sign-in, apart from the CRM roles.

Supervisors manage users, but only within their own permissions: they cannot grant superuser
status, a group or a permission they do not hold themselves, nor change or delete a user who
holds more than they do (a superuser included). Groups, raw permissions and API tokens are for
superusers only (core/roles.py gives Supervisors no permission on them). The sign-in form asks
for a one-time code (django-otp) from anyone who has a device, and from every Supervisor and
superuser when ADMIN_REQUIRE_OTP is on; django-axes locks out repeated password failures.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q
from django_otp import devices_for_user, user_has_device
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import TokenProxy

from core.roles import ROLE_NAMES

SUPERVISOR = ROLE_NAMES[0]


def _perm_names(permissions) -> set[str]:
    return {f"{app_label}.{codename}" for app_label, codename in permissions.values_list("content_type__app_label", "codename")}


def user_permissions_held(*, user: User) -> set[str]:
    """Everything `user`'s groups and own permissions grant, whether or not the account is
    active today (an editor could reactivate it)."""
    return _perm_names(Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct())


def user_exceeds(*, editor: User, user: User) -> bool:
    """Whether `user` holds something `editor` does not, so that `editor` may not manage them."""
    if editor.is_superuser:
        return False
    return user.is_superuser or not user_permissions_held(user=user) <= editor.get_all_permissions()


def otp_required(*, user: User) -> bool:
    """Whether `user` must give a one-time code to sign in to the admin."""
    if user_has_device(user):
        return True
    return settings.ADMIN_REQUIRE_OTP and (user.is_superuser or user.groups.filter(name=SUPERVISOR).exists())


class CrmUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if request.user.is_superuser else [*readonly, "is_superuser"]

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or not user_exceeds(editor=request.user, user=obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not user_exceeds(editor=request.user, user=obj))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser and db_field.name in ("groups", "user_permissions"):
            # Only what the editor holds is offered, and the form refuses anything else.
            held = request.user.get_all_permissions()
            if db_field.name == "user_permissions":
                ids = [p.pk for p in Permission.objects.select_related("content_type")
                       if f"{p.content_type.app_label}.{p.codename}" in held]
                kwargs["queryset"] = Permission.objects.filter(pk__in=ids).select_related("content_type")
            else:
                groups = Group.objects.prefetch_related("permissions__content_type")
                ids = [g.pk for g in groups
                       if {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} <= held]
                kwargs["queryset"] = Group.objects.filter(pk__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class SuperuserGroupAdmin(GroupAdmin):
    """Groups are the roles: changing one changes what every member may do."""

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


admin.site.unregister(User)
admin.site.register(User, CrmUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, SuperuserGroupAdmin)


class AdminLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin sign-in: password, then a one-time code when `otp_required`.

    The device is chosen from the code's shape (six digits: the authenticator app; otherwise
    a backup code), so the form has one extra field instead of django-otp's device picker."""

    otp_token = forms.CharField(
        required=False, label="One-time code", strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="From your authenticator app, or a backup code. Leave empty if you have no device.",
    )
    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": "Enter the one-time code from your authenticator app.",
    }

    def clean(self):
        cleaned_data = super().clean()
        user = self.get_user()
        if user is not None and otp_required(user=user):
            if not user_has_device(user):
                raise forms.ValidationError(
                    "Your account must sign in with a one-time code, but has no device yet: ask a superuser to add one.",
                    code="otp_device_missing",
                )
            self.clean_otp(user)
        return cleaned_data

    def _chosen_device(self, user):
        token = self.cleaned_data.get("otp_token") or ""
        devices = list(devices_for_user(user, for_verify=True))
        kind = TOTPDevice if token.isdigit() else StaticDevice
        return next((d for d in devices if isinstance(d, kind)), devices[0] if devices else None)

    def _update_form(self, user) -> None:
        """No device picker to fill in."""


admin.site.login_form = AdminLoginForm
admin.site.login_template = "admin/login_otp.html"

# DRF's plain tokens no longer authenticate (the API takes hashed, expiring knox tokens); the app
# stays installed only for the migration that converted them, and its admin would only mislead.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
