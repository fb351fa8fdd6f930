"""Yes / no / uncertain answers with ASR noise."""

import pytest

from agents.nlu.entities import Answer, extract_yes_no

pytestmark = []

YES, NO, UNSURE = Answer.YES, Answer.NO, Answer.UNCERTAIN


@pytest.mark.parametrize(("text", "expected"), [
    ("yeah", YES), ("Yep.", YES), ("yup", YES), ("ya", YES), ("sure", YES), ("sure thing", YES),
    ("correct", YES), ("that's right", YES), ("that's correct", YES), ("yes please", YES), ("uh huh", YES),
    ("mm-hmm", YES), ("of course", YES), ("absolutely", YES), ("it is", YES), ("no problem", YES),
    ("um yeah that's it", YES),
    ("no", NO), ("nope", NO), ("nah", NO), ("not really", NO), ("no that's wrong", NO), ("know", NO),
    ("I don't think so", NO), ("absolutely not", NO), ("that's not right", NO), ("no it isn't", NO),
    ("yeah no", NO), ("nuh uh", NO), ("that isn't mine", NO),
    ("I don't know", UNSURE), ("maybe", UNSURE), ("I'm not sure", UNSURE), ("not sure", UNSURE),
    ("I guess", UNSURE), ("no idea", UNSURE), ("I can't remember", UNSURE),
])
def test_yes_no(text, expected):
    assert extract_yes_no(text) == expected


@pytest.mark.parametrize("text", ["I want to cancel", "hello", "what's my balance", "", "(music)"])
def test_neither(text):
    assert extract_yes_no(text) is None
