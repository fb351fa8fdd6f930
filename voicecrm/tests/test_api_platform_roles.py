"""The role table in docs/api.md ("Roles: who may do what") is what the code enforces: every
operation of the API is in it once, with exactly the roles whose permission checks let it through."""

import re
from pathlib import Path

import pytest
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.test import APIRequestFactory, force_authenticate

from voicecrm.demo.seed import seed_demo

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROLES = ("Supervisor", "Agent", "Viewer")
# A value for each path parameter: the views' querysets read some of them (an agent's knowledge).
PATH_VALUES = {"pk": "1", "id": "1", "public_id": "00000000-0000-0000-0000-000000000001", "slug": "dispatch"}


def operations() -> list[tuple[str, str, object]]:
    """(METHOD, path under /api/v1, view callback) for every operation the API serves."""
    found = []
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        if path.startswith("/api/v1/"):
            # As the schema names them: an object's key is {id} whatever the view calls it.
            path = path.removeprefix("/api/v1").replace("{pk}", "{id}").replace("{public_id}", "{id}")
            found.append((method, path, callback))
    return found


def path_kwargs(path: str) -> dict[str, str]:
    names = re.findall(r"{(\w+)}", path)
    return {name: next((v for k, v in PATH_VALUES.items() if name.endswith(k)), "1") for name in names}


def passes_permissions(user, method: str, path: str, callback) -> bool:
    """Whether DRF's permission checks of this operation let `user` through (its view, its action)."""
    request = APIRequestFactory().generic(method, f"/api/v1{path}")
    force_authenticate(request, user=user)
    view = callback.cls(**getattr(callback, "initkwargs", {}))
    view.args, view.kwargs, view.format_kwarg = (), path_kwargs(path), None
    if getattr(callback, "actions", None):
        view.action_map = callback.actions
        view.action = callback.actions[method.lower()]
    view.request = view.initialize_request(request)
    view.headers = {}
    try:
        view.check_permissions(view.request)
    except (PermissionDenied, NotAuthenticated):
        return False
    return True


def documented() -> dict[tuple[str, str], set[str]]:
    """The role table: each `METHOD /path` in its first column, with the roles whose cell is not "—"."""
    text = DOC.read_text()
    section = text.split("## Roles: who may do what", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, str], set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 1 + len(ROLES) or not cells[0].startswith("`"):
            continue
        allowed = {role for role, cell in zip(ROLES, cells[1:], strict=True) if cell != "—"}
        for operation in re.findall(r"`([A-Z]+ /[^`]*)`", cells[0]):
            method, path = operation.split(" ", 1)
            assert (method, path) not in table, f"{operation} is in the table twice"
            table[(method, path)] = allowed
    return table


@pytest.fixture
def role_users(sam, bob, charlie):
    seed_demo()  # the agents whose knowledge the nested routes read
    return {"Supervisor": sam, "Agent": bob, "Viewer": charlie}


def enforced(role_users) -> dict[tuple[str, str], set[str]]:
    return {(method, path): {role for role, user in role_users.items() if passes_permissions(user, method, path, callback)}
            for method, path, callback in operations()}


def test_the_role_table_is_what_the_code_enforces(role_users):
    code, doc = enforced(role_users), documented()
    missing = sorted(set(code) - set(doc))
    extra = sorted(set(doc) - set(code))
    wrong = sorted(key for key in set(code) & set(doc) if code[key] != doc[key])
    assert not (missing or extra or wrong), "\n".join(
        [f"not in the table: {m} {p} -> {sorted(code[(m, p)])}" for m, p in missing]
        + [f"in the table, not in the API: {m} {p}" for m, p in extra]
        + [f"table says {sorted(doc[k])}, code lets {sorted(code[k])}: {k[0]} {k[1]}" for k in wrong])


def test_the_checker_sees_a_refusal(role_users, charlie, bob):
    # The check above is only as good as this: a Viewer may not create a customer, an Agent may.
    callback = next(cb for method, path, cb in operations() if (method, path) == ("POST", "/customers/"))
    assert not passes_permissions(charlie, "POST", "/customers/", callback)
    assert passes_permissions(bob, "POST", "/customers/", callback)
