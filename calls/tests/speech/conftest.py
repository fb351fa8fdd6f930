"""Real engines, loaded once per test session."""

import pytest

from .helpers import piper_engine, whisper_engine


@pytest.fixture(scope="session")
def piper():
    return piper_engine()


@pytest.fixture(scope="session")
def whisper():
    return whisper_engine()
