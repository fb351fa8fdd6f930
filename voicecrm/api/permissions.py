"""Who may do what through the REST API: model permissions per request, writable fields per role."""

from collections.abc import Collection, Mapping

from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import DjangoModelPermissions

from core.roles import ROLE_NAMES

WRITE_METHODS = ("POST", "PUT", "PATCH")
# The browsable API's HTML forms (DEBUG only) post the CSRF token alongside the fields.
FORM_EXTRAS = frozenset({"csrfmiddlewaretoken"})


class ModelPermissions(DjangoModelPermissions):
    """Role permissions from the admin apply to the API too, reads included.

    HEAD is a read: DRF requires nothing for it, and Django answers HEAD with the GET view, so a
    user without the view permission could otherwise have the list run (and learn its size from
    Content-Length, or its body from a server that does not strip it).
    """

    perms_map = {**DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"],
                 "HEAD": ["%(app_label)s.view_%(model_name)s"]}


def user_roles(user) -> set[str]:
    """The console roles a user holds; a superuser counts as a Supervisor."""
    if user.is_superuser:
        return {"Supervisor"}
    return set(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))


class RoleWritableFieldsMixin:
    """For viewsets that write: a body names only fields the serializer has, and only ones the role may change.

    ModelPermissions decides whether a user may change a model at all; this decides which fields.
    A Supervisor (or superuser) writes every writable field, another role the fields listed for it
    in `role_writable_fields`, a user with no role none. Checked before the serializer runs, so a
    refused write changes nothing:
    - a field the serializer does not have: 400 naming it (DRF would silently drop it);
    - a field the role may not change: 403 naming it.
    Read-only fields the serializer does have (id, timestamps, derived values) are ignored, as DRF
    does, so a client may send back what it read.
    """

    role_writable_fields: Mapping[str, Collection[str]] = {}

    def initial(self, request, *args, **kwargs) -> None:
        # After authentication, permissions and throttles: a Viewer's write is a 403 before its body is read.
        super().initial(request, *args, **kwargs)
        if request.method in WRITE_METHODS:
            self.check_write_fields(request)

    def check_write_fields(self, request) -> None:
        data = request.data
        if not isinstance(data, Mapping):
            return  # not an object: the serializer answers "expected a dictionary"
        fields = self.get_serializer().fields
        sent = set(data.keys()) - FORM_EXTRAS
        unknown = sorted(sent - set(fields))
        if unknown:
            raise ValidationError({name: ["Unknown field."] for name in unknown})
        writable = {name for name, field in fields.items() if not field.read_only}
        forbidden = sorted((sent & writable) - self.fields_writable_by(request.user, writable))
        if forbidden:
            raise PermissionDenied({name: ["Your role cannot change this field."] for name in forbidden})

    def fields_writable_by(self, user, writable: set[str]) -> set[str]:
        roles = user_roles(user)
        if "Supervisor" in roles:
            return writable
        allowed: set[str] = set()
        for role in roles:
            allowed.update(self.role_writable_fields.get(role, ()))
        return allowed & writable
