import pytest

from tickets.tests.factories import SlaPolicyFactory


@pytest.fixture
def policies():
    """Urgent: respond in 15 min, resolve in 4 h. Normal: 4 h and 24 h."""
    return {
        "urgent": SlaPolicyFactory(priority="urgent", first_response_minutes=15, resolution_minutes=240),
        "normal": SlaPolicyFactory(priority="normal", first_response_minutes=240, resolution_minutes=1440),
    }
