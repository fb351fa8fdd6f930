"""Normalization must never turn an emergency into something harmless."""

import pytest

from agents.nlu.normalize import normalize
from agents.scenarios.dispatch.recognizers import extract_emergency


@pytest.mark.parametrize("text", ["my truck is on fire", "The trailer is on fire.", "engine on fire"])
def test_fire_survives_normalization(text):
    assert "on fire" in normalize(text)
    assert extract_emergency(text) is not None
