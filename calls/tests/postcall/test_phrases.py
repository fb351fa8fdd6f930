"""An agent's fixed phrases are synthesized on the tts queue when its configuration changes."""

import pytest

from calls.postcall.phrases import agent_fixed_phrases, agent_phrases_presynthesize
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


def test_the_fixed_phrases_are_the_ones_a_voice_session_caches():
    from calls.phrases import fixed_phrases
    from calls.session.session import VoiceSession

    agent = demo_agent("dispatch")
    phrases = agent_fixed_phrases(agent)
    assert phrases == fixed_phrases(agent)
    assert phrases[:4] == ["Hi, this is dispatch check-in.", "What's your status right now?", "Thanks, drive safe.",
                           "Goodbye!"]
    assert all(any(p in filler for p in phrases) for filler in VoiceSession.FILLERS)
    agent.greeting = "Hi {customer.first_name}, dispatch here."
    assert not any("{" in p for p in agent_fixed_phrases(agent))


def test_presynthesis_fills_the_session_s_phrase_cache_once(fake_tts):
    from calls.session.session import _phrase_cache, phrase_cache

    agent = demo_agent("dispatch")
    phrases = agent_fixed_phrases(agent)
    first = agent_phrases_presynthesize(agent_id=agent.pk, version=agent.version)
    assert first == {"phrases": len(phrases), "rates": [16000, 8000], "synthesized": 2 * len(phrases)}
    assert len(list((fake_tts / "phrases").glob("*.wav"))) == 2 * len(phrases)
    assert agent_phrases_presynthesize(agent_id=agent.pk)["synthesized"] == 0  # from disk now
    assert "superseded" in agent_phrases_presynthesize(agent_id=agent.pk, version=agent.version + 1)["skipped"]
    # A voice session at 8 kHz now finds every phrase on disk: no synthesis at call time.
    _phrase_cache.cache_clear()
    cache = phrase_cache(8000)
    cache.warm(phrases, voice=agent.voice, rate=agent.speaking_rate)
    assert cache.synthesized == 0
    _phrase_cache.cache_clear()


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
