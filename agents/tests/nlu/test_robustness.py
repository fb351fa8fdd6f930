"""Whatever speech recognition writes, the NLU layer answers and never raises."""

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.nlu import entities
from agents.nlu.intents import recognize_intent
from agents.nlu.normalize import normalize, words_to_digits

pytestmark = []

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
VOCAB = ("one two three oh double zero hundred thousand and a point to for at dot the my is am "
         "tomorrow friday next pm am half past quarter in hours minutes by eta dollars k $ , . : / - "
         "cancel appointment not no yes i-80 mile marker 12 05/05/1980 4:30 nineteen eighty st th").split()

caller_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(VOCAB), max_size=14).map(" ".join),
)


@settings(max_examples=300, deadline=None)
@given(caller_text)
def test_nothing_raises(text):
    normalize(text)
    normalize(text, digits=True)
    words_to_digits(text)
    recognize_intent(text)
    for name in entities.__all__:
        if not name.startswith("extract_"):
            continue
        extractor = getattr(entities, name)
        if name in ("extract_datetime", "extract_eta"):
            extractor(text, now=NOW)
        else:
            extractor(text)
