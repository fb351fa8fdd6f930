"""Every scenario pack's scripted conversations pass on the deterministic engine, through the text channel."""

import pytest

from telephony.chat.conversations import pack_conversations, results_table, run_conversation

CONVERSATIONS = pack_conversations()


def test_there_are_at_least_thirty_conversations_across_the_four_scenarios():
    agents = {conversation.get("agent") for _, conversation in CONVERSATIONS}
    assert len(CONVERSATIONS) >= 30
    assert {"support", "dispatch", "leads", "reception"} <= agents


@pytest.mark.django_db
@pytest.mark.parametrize("source, conversation", CONVERSATIONS, ids=[c.get("name", s) for s, c in CONVERSATIONS])
def test_conversation(source, conversation):
    result = run_conversation(conversation, source=source)
    transcript = "\n".join(f"{who:>6}: {text}" for who, text in result.transcript)
    assert result.passed, f"{results_table([result])}\n\n{transcript}"
