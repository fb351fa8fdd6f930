"""normalize() and words_to_digits(): ASR clean-up and spoken numbers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.nlu.normalize import normalize, ordinals_to_digits, words_to_digits

pytestmark = []

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Um, I'd like to, like, book an appointment?", "i would like to book an appointment"),
    ("What's my balance?", "what is my balance"),
    ("I can't log in too my account", "i can not log in to my account"),
    ("the why fi keeps cutting out", "the wifi keeps cutting out"),
    ("uh huh", "yes"),
    ("mm-hmm", "yes"),
    ("nuh uh", "no"),
    ("know", "no"),
    ("I know that", "i know that"),
    ("(music playing)", ""),
    ("[inaudible]", ""),
    ("it's like really slow, you know", "it is really slow"),
    ("I like turtles", "i like turtles"),
    ("what's my customer ID", "what is my customer id"),
    ("why is my bill so hi", "why is my bill so high"),
    ("I have a question about my build", "i have a question about my bill"),
    ("ok thanks by", "ok thanks bye"),
    ("I   WANT    to   pay", "i want to pay"),
    ("$12,500 at 4:30 p.m. on 05/05/1980", "$12,500 at 4:30 pm on 05/05/1980"),
    ("I'm on I-80, near Des Moines.", "i am on i-80 near des moines"),
    ("call (415) 555-2671!", "call 415 555-2671"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_digits_option():
    assert normalize("My account is one zero zero four two.", digits=True) == "my account is 10042"


@pytest.mark.parametrize(("text", "expected"), [
    ("one zero zero four two", "10042"),
    ("double seven", "77"),
    ("triple five", "555"),
    ("five oh two", "502"),
    ("five oh oh", "500"),
    ("oh seven seven zero zero nine zero zero one two three", "07700900123"),
    ("twenty three", "23"),
    ("twenty-three", "23"),
    ("one hundred and fifty dollars", "150 dollars"),
    ("a hundred bucks", "100 bucks"),
    ("two thousand four hundred", "2400"),
    ("fifteen hundred", "1500"),
    ("two thousand and five", "2005"),
    ("nineteen eighty", "1980"),
    ("twenty twenty four", "2024"),
    ("one hundred twenty three thousand four hundred fifty six", "123456"),
    ("1 0 0 4 2", "10042"),
    ("1 zero 0 four 2", "10042"),
    ("one, zero, zero, four, two.", "10042."),
    ("one zero for two five", "10425"),
    ("i want to pay to hundred dollars", "i want to pay 200 dollars"),
    ("twelve point five thousand", "12.5 thousand"),
    ("mile marker one twelve", "mile marker 112"),
    ("double oh seven", "007"),
])
def test_words_to_digits(text, expected):
    assert words_to_digits(text) == expected


@pytest.mark.parametrize("text", [
    "someone often wants to go",
    "no one is hurt",
    "this one is fine",
    "I want one",
    "to go or not to go",
    "I'm going for a walk",
    "tone, none, wonder, anyone, phone",
    "oh, that's fine",
    "five to three",  # a time or a range, not "523"
    "I ate already",
    "we won the game",
    "a lot of hundreds",
])
def test_words_to_digits_leaves_ordinary_words(text):
    before = text.split()
    after = words_to_digits(text).split()
    changed = [b for b, a in zip(before, after) if a != b]
    if text == "five to three":
        assert words_to_digits(text) == "5 to 3"
    elif text == "oh, that's fine":
        assert words_to_digits(text) == text
    else:
        assert not changed, words_to_digits(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("the twenty first of may", "the 21st of may"),
    ("fifth of May", "5th of May"),
    ("may second", "may 2nd"),
    ("wait a second", "wait a second"),
    ("the thirtieth", "the 30th"),
])
def test_ordinals_to_digits(text, expected):
    assert ordinals_to_digits(text) == expected


digit_strings = st.text(alphabet="0123456789", min_size=2, max_size=16)


@settings(max_examples=300, deadline=None)
@given(digit_strings)
def test_spoken_digit_by_digit_round_trips(digits):
    spoken = " ".join(DIGIT_WORDS[int(d)] for d in digits)
    assert words_to_digits(spoken) == digits


@settings(max_examples=300, deadline=None)
@given(digit_strings, st.data())
def test_mixed_words_digits_and_oh_round_trip(digits, data):
    """Each digit as a word or a numeral; zeros after the first digit may be "oh"; commas allowed."""
    tokens = []
    for i, d in enumerate(digits):
        choices = [DIGIT_WORDS[int(d)], d]
        if d == "0" and i > 0:
            choices.append("oh")
        tokens.append(data.draw(st.sampled_from(choices)))
    sep = data.draw(st.sampled_from([" ", ", "]))
    spoken = sep.join(tokens)
    assert words_to_digits(spoken).replace(",", "") == digits


@settings(max_examples=200, deadline=None)
@given(digit_strings)
def test_spoken_digits_inside_a_sentence(digits):
    spoken = " ".join(DIGIT_WORDS[int(d)] for d in digits)
    assert words_to_digits(f"my account number is {spoken} thanks") == f"my account number is {digits} thanks"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=999_999))  # a lone "one" stays a word by design
def test_cardinals_read_back(number):
    assert words_to_digits(_say(number)) == str(number)


def _say(n: int) -> str:
    """English words for 1..999999 ("one hundred and five thousand two hundred twelve")."""
    teens = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
             "nineteen"]
    tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

    def below_thousand(k: int) -> list[str]:
        words: list[str] = []
        if k >= 100:
            words += [DIGIT_WORDS[k // 100], "hundred"]
            k %= 100
            if k:
                words.append("and")
        if k >= 20:
            words.append(tens[k // 10])
            if k % 10:
                words.append(DIGIT_WORDS[k % 10])
        elif k >= 10:
            words.append(teens[k - 10])
        elif k:
            words.append(DIGIT_WORDS[k])
        return words

    words = []
    if n >= 1000:
        words += below_thousand(n // 1000) + ["thousand"]
    words += below_thousand(n % 1000)
    return " ".join(words)
