"""Fixed phrases of an agent (greeting, fillers, goodbye), synthesized ahead of calls.

When an AgentConfig is saved, its phrases go through the speech engine's PhraseCache on the
`tts` queue, so the first caller to hear a new greeting does not wait for synthesis.
"""

from __future__ import annotations

import logging

from agents.models import AgentConfig

logger = logging.getLogger(__name__)

DEFAULT_FILLERS = [
    "One moment, please.",
    "Let me check that for you.",
    "Sorry, I didn't catch that. Could you say that again?",
]


def agent_fixed_phrases(agent: AgentConfig) -> list[str]:
    flow = agent.flow if isinstance(agent.flow, dict) else {}
    fillers = flow.get("fillers")
    phrases = [agent.greeting, *(fillers if isinstance(fillers, list) else DEFAULT_FILLERS), agent.closing]
    seen, out = set(), []
    for phrase in phrases:
        # Templates ("Hi {customer.first_name}") differ per call and cannot be cached.
        if isinstance(phrase, str) and phrase.strip() and "{" not in phrase and phrase not in seen:
            seen.add(phrase)
            out.append(phrase.strip())
    return out


def agent_phrases_presynthesize(*, agent_id: int, version: int | None = None) -> dict:
    from calls.speech.tts import PhraseCache

    agent = AgentConfig.objects.filter(pk=agent_id).first()
    if agent is None:
        return {"skipped": "agent deleted"}
    if version is not None and agent.version != version:
        return {"skipped": f"superseded by version {agent.version}"}  # a newer save queued its own run
    cache = PhraseCache()
    phrases = agent_fixed_phrases(agent)
    before = cache.synthesized
    cache.warm(phrases, voice=agent.voice, rate=agent.speaking_rate)
    synthesized = cache.synthesized - before
    logger.info("pre-synthesized %d of %d phrases for agent %s", synthesized, len(phrases), agent.slug)
    return {"phrases": len(phrases), "synthesized": synthesized}
