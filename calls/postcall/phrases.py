"""Fixed phrases of an agent (greeting, fillers, goodbye), synthesized ahead of calls.

When an AgentConfig is saved, its phrases go through the speech engine's PhraseCache on the
`tts` queue, at the rates lines play them (16 kHz for the browser widget, 8 kHz for phone
lines), so the first caller to hear a new greeting does not wait for synthesis. The cache
lives on disk under SPEECH_CACHE_DIR: the worker and the daphne processes must share it (one
host, or a shared volume) for this to help.
"""

from __future__ import annotations

import logging

from agents.models import AgentConfig
from calls.phrases import fixed_phrases
from calls.speech.synthesis import PhraseCache

logger = logging.getLogger(__name__)

PRESYNTHESIS_RATES = (16000, 8000)


def agent_fixed_phrases(agent: AgentConfig) -> list[str]:
    """Exactly the sentences a voice session caches for this agent (calls.phrases.fixed_phrases)."""
    # Templates ("Hi {customer.first_name}") differ per call and cannot be cached.
    return [p for p in fixed_phrases(agent) if p.strip() and "{" not in p]


def agent_phrases_presynthesize(*, agent_id: int, version: int | None = None) -> dict:
    agent = AgentConfig.objects.filter(pk=agent_id).first()
    if agent is None:
        return {"skipped": "agent deleted"}
    if version is not None and agent.version != version:
        return {"skipped": f"superseded by version {agent.version}"}  # a newer save queued its own run
    phrases = agent_fixed_phrases(agent)
    synthesized = 0
    for rate in PRESYNTHESIS_RATES:
        cache = PhraseCache(sample_rate=rate)
        cache.warm(phrases, voice=agent.voice, rate=agent.speaking_rate)
        synthesized += cache.synthesized
    logger.info("pre-synthesized %d phrases for agent %s (%d were not cached yet)", len(phrases), agent.slug, synthesized)
    return {"phrases": len(phrases), "rates": list(PRESYNTHESIS_RATES), "synthesized": synthesized}
