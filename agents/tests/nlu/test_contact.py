"""Account numbers, phone numbers, emails, names and postcodes."""

import pytest

from agents.nlu.entities import (
    PersonName,
    Postcode,
    extract_account_number,
    extract_email,
    extract_name,
    extract_phone,
    extract_postcode,
)

pytestmark = []


@pytest.mark.parametrize(("text", "expected"), [
    ("my account number is one zero zero four two", "10042"),
    ("It's 1 0 0 4 2.", "10042"),
    ("account double seven three four five six", "773456"),
    ("uh it's five five oh one two three four", "5501234"),
    ("account 55512 and I owe 20000 dollars", "55512"),
    ("the number is 12345678", "12345678"),
    # negatives
    ("I owe twelve thousand five hundred dollars", None),
    ("it's 1234", None),  # too short
    ("I've got 3 kids", None),
    ("call me at 415 555 2671 1234", None),  # over ten digits in one run
    ("", None),
])
def test_account_number(text, expected):
    assert extract_account_number(text) == expected


@pytest.mark.parametrize(("text", "region", "expected"), [
    ("call me back at four one five five five five two six seven one", "US", "+14155552671"),
    ("my number is (415) 555-2671", "US", "+14155552671"),
    ("four one five, five five five, two six seven one", "US", "+14155552671"),
    ("plus four four seven seven zero zero nine zero zero one two three", "US", "+447700900123"),
    ("oh seven seven zero zero nine zero zero one two three", "GB", "+447700900123"),
    ("+1 212-555-0182", "US", "+12125550182"),
    # negatives
    ("I have no phone", "US", None),
    ("it's 12 34", "US", None),
    ("my account is 10042", "US", None),
])
def test_phone(text, region, expected):
    assert extract_phone(text, region=region) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("john dot smith at gmail dot com", "john.smith@gmail.com"),
    ("j o h n at example dot org", "john@example.org"),
    ("it's jane underscore doe one two at yahoo dot com", "jane_doe12@yahoo.com"),
    ("My email is John.Smith@Gmail.com.", "john.smith@gmail.com"),
    ("bob at acme dot co dot uk", "bob@acme.co.uk"),
    ("s m i t h at gmail", "smith@gmail.com"),  # a well-known provider needs no "dot com"
    ("mary dash ann at outlook dot com", "mary-ann@outlook.com"),
    # negatives
    ("I'm at home", None),
    ("we met at the office dot", None),
    ("at gmail dot com", None),  # no local part
    ("", None),
])
def test_email(text, expected):
    assert extract_email(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("my name is John Smith", PersonName("John", "Smith")),
    ("This is Maria.", PersonName("Maria")),
    ("It's Jane Doe speaking", PersonName("Jane", "Doe")),
    ("hi this is dave from acme", PersonName("Dave")),
    ("my name's john and I need help", PersonName("John")),
    ("I'm John", PersonName("John")),
    ("my last name is Smith", PersonName(None, "Smith")),
    ("you're speaking with Priya Patel", PersonName("Priya", "Patel")),
    # negatives
    ("Hi, this is about my bill", None),
    ("It's broken.", None),
    ("I'm calling about my order", None),
    ("this is really bad", None),
    ("I'm not sure", None),
    ("it's not working", None),
])
def test_name(text, expected):
    assert extract_name(text) == expected


def test_name_full_property():
    assert PersonName("Jane", "Doe").full == "Jane Doe"
    assert PersonName(None, "Doe").full == "Doe"


@pytest.mark.parametrize(("text", "country", "expected"), [
    ("my zip is nine oh two one oh", None, Postcode("90210", "US")),
    ("90210-1234", None, Postcode("90210-1234", "US")),
    ("zip code one two three four five and my account is 9876543", None, Postcode("12345", "US")),
    ("s w one a two a a", None, Postcode("SW1A 2AA", "GB")),
    ("my postcode is SW1A 2AA", None, Postcode("SW1A 2AA", "GB")),
    ("postcode m one one a e", "GB", Postcode("M1 1AE", "GB")),
    ("it's e c one a one b b", None, Postcode("EC1A 1BB", "GB")),
    # negatives
    ("I'm at 3 pm", None, None),
    ("account 4155552671", None, None),
    ("SW1A 2AA", "US", None),
])
def test_postcode(text, country, expected):
    assert extract_postcode(text, country=country) == expected
