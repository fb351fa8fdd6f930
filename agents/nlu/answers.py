"""Yes / no / not sure, as answers to a question the agent just asked."""

from __future__ import annotations

import re
from enum import StrEnum

from agents.nlu.normalize import normalize

__all__ = ["Answer", "extract_yes_no"]


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNCERTAIN = "uncertain"


# Checked in order; the first family that matches wins. Uncertainty goes first because
# "i do not know" and "not sure" contain "no"/"not"; negated yeses ("not really", "i do not
# think so") before the plain yes words.
_UNCERTAIN = re.compile(
    r"\b(?:i do not know|i dunno|dunno|do not know|not sure|unsure|no idea|maybe|perhaps|possibly|"
    r"i am not certain|not certain|i can not remember|can not remember|i do not remember|i forget|"
    r"i guess|kind of|sort of|hard to say|depends|it depends|yes and no|not that i know)\b"
)
# "no problem" agrees, though it starts with "no".
_YES_DESPITE_NO = re.compile(r"^(?:no problem|no worries|not a problem|no doubt|no question)\b")
_NO = re.compile(
    r"^(?:no|nope|nah|naw|nay|negative|not really|no way|never|wrong|incorrect)\b"
    r"|\b(?:is|was) not (?:right|correct|it|true|me|mine)\b"
    r"|\b(?:i do not think so|not really|not at all|absolutely not|of course not|definitely not|certainly not|"
    r"that is wrong|that is incorrect|not correct|not right|nothing like that|no thanks|no thank you|"
    r"i do not|i did not|i have not|it is not|it was not|i am not|no it is not|not quite|no no)\b"
    r"|^(?:yes|yeah) no\b"
)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|yah|yea|sure|correct|right|exactly|absolutely|definitely|certainly|"
    r"of course|ok|okay|alright|all right|affirmative|indeed|totally|sounds good|go ahead|please do|"
    r"that is right|that is correct|that is it|that is true|it is|i do|i did|i have|i am|i think so|"
    r"you got it|you bet|uh huh|for sure|no problem|no worries|why not|please|aye|yessir)\b"
    r"|\b(?:that is right|that is correct|that is it|that is true|sounds good|yes please|that works|works for me|"
    r"i think so|go ahead|please do|you got it|perfect|that would be great|yes yes)\b"
    r"|^that is (?:my|the) (?:one|number|address|name)\b"
)


def extract_yes_no(text: str) -> Answer | None:
    """The caller's answer to a yes/no question, with ASR noise ("yep", "nah", "uh huh",
    "that's right", "not really", "I don't know"), or None when the reply is neither."""
    s = normalize(text)
    if not s:
        return None
    if _UNCERTAIN.search(s):
        return Answer.UNCERTAIN
    if _YES_DESPITE_NO.search(s):
        return Answer.YES
    if _NO.search(s):
        return Answer.NO
    if _YES.search(s):
        return Answer.YES
    return None
