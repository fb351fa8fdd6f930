import pytest
from django.contrib.auth.models import Group


@pytest.fixture
def alice(django_user_model):
    """A superuser."""
    return django_user_model.objects.create_superuser("alice", "alice@example.com", "alice-password-123")


def _staff_in_group(django_user_model, username: str, group: str):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", f"{username}-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def sam(django_user_model):
    """A Supervisor (not a superuser)."""
    return _staff_in_group(django_user_model, "sam", "Supervisor")


@pytest.fixture
def bob(django_user_model):
    """An Agent: edits customers, tickets and appointments; reads calls."""
    return _staff_in_group(django_user_model, "bob", "Agent")


@pytest.fixture
def charlie(django_user_model):
    """A Viewer: reads everything, changes nothing."""
    return _staff_in_group(django_user_model, "charlie", "Viewer")
