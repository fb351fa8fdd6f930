"""An agent's fixed phrases are synthesized on the tts queue when its configuration changes."""

import pytest

from calls.postcall.phrases import DEFAULT_FILLERS, agent_fixed_phrases, agent_phrases_presynthesize
from calls.tests.postcall.conftest import demo_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_tts(settings, tmp_path):
    from calls.speech import registry

    settings.TTS_ENGINE = "calls.speech.fake.FakeTtsEngine"
    settings.SPEECH_CACHE_DIR = tmp_path
    registry.clear_caches()
    yield tmp_path
    registry.clear_caches()


def test_the_fixed_phrases_are_greeting_fillers_and_goodbye():
    agent = demo_agent("dispatch")
    assert agent_fixed_phrases(agent) == [agent.greeting, *DEFAULT_FILLERS, agent.closing]
    agent.flow = {"fillers": ["Hang on.", "Hi {customer.first_name}"]}
    assert agent_fixed_phrases(agent) == [agent.greeting, "Hang on.", agent.closing]  # templates vary per call


def test_presynthesis_fills_the_phrase_cache_once(fake_tts):
    agent = demo_agent("dispatch")
    first = agent_phrases_presynthesize(agent_id=agent.pk, version=agent.version)
    assert first == {"phrases": 5, "synthesized": 5}
    assert len(list((fake_tts / "phrases").glob("*.wav"))) == 5
    assert agent_phrases_presynthesize(agent_id=agent.pk)["synthesized"] == 0  # from disk now
    assert agent_phrases_presynthesize(agent_id=agent.pk, version=agent.version - 1 or 99)["skipped"]


def test_saving_an_agent_queues_presynthesis_after_commit(broker, django_capture_on_commit_callbacks):
    agent = demo_agent("dispatch")
    broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent.greeting = "Dispatch here, go ahead."
        agent.save()
    assert broker.sent == [("calls.tasks.agent_phrases_presynthesize_task", (agent.pk, agent.version),
                            {"retry": True, "retry_policy": broker.sent[0][2]["retry_policy"]})]


def test_an_unreachable_broker_does_not_stop_the_save(broker, django_capture_on_commit_callbacks):
    agent = demo_agent("dispatch")
    broker.down = True
    with django_capture_on_commit_callbacks(execute=True):
        agent.save()
    assert broker.sent == []
