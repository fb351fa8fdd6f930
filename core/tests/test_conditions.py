"""The one condition language: its operators, the rules' shorthand, and its validator."""

import pytest

from core.conditions import (
    OPERATORS,
    condition_errors,
    condition_holds,
    value_at,
    when_errors,
    when_holds,
)

VALUES = {
    "slots": {"debt_amount": 12000, "said_amount": "9500", "status": "delayed", "name": {"first": "Ada"},
              "empty": "", "nothing": [], "tags": ["vip", "new"], "note": "call me after five"},
    "result": {"found": True, "count": 1, "items": [{"n": 1}, {"n": 2}]},
    "when": {"iso": "2030-05-05T10:00:00+00:00"},
}


@pytest.mark.parametrize("condition, expected", [
    ({"var": "slots.debt_amount", "gte": 10000}, True),
    ({"var": "slots.debt_amount", "gt": 12000}, False),
    ({"var": "slots.debt_amount", "gte": 10000, "lt": 12000}, False),
    ({"var": "slots.said_amount", "lt": 10000}, True),           # numbers as said compare as numbers
    ({"var": "slots.status", "lt": 10}, False),                  # a word is not a number
    ({"var": "when.iso", "gte": "2030-01-01"}, True),            # ISO dates order as text
    ({"var": "slots.missing", "lt": 10}, False),
    ({"var": "slots.status", "eq": "delayed"}, True),
    ({"var": "slots.status", "ne": "delayed"}, False),
    ({"var": "result.found", "eq": True}, True),
    ({"var": "result.count", "eq": True}, False),                # 1 is not true
    ({"var": "result.found", "eq": 1}, False),
    ({"var": "slots.status", "in": ["delayed", "broken_down"]}, True),
    ({"var": "result.count", "in": [True]}, False),
    ({"var": "slots.status", "not_in": ["arrived"]}, True),
    ({"var": "slots.tags", "contains": "vip"}, True),
    ({"var": "slots.note", "contains": "after five"}, True),
    ({"var": "result.count", "contains": "x"}, False),           # no error on a number
    ({"var": "slots.name.first", "set": True}, True),
    ({"var": "slots.empty", "set": True}, False),
    ({"var": "slots.nothing", "set": False}, True),
    ({"var": "slots.missing", "set": False}, True),
    ({"var": "result.items.-1.n", "eq": 2}, True),
    ({"all": [{"var": "result.found", "eq": True}, {"var": "slots.debt_amount", "gte": 1}]}, True),
    ({"any": [{"var": "result.found", "eq": False}, {"var": "slots.debt_amount", "lt": 1}]}, False),
    ({"not": {"var": "slots.status", "eq": "arrived"}}, True),
    ({"var": "slots.status", "exists": True}, False),            # unknown operators never hold
])
def test_condition_semantics(condition, expected):
    assert condition_holds(condition, VALUES) is expected


@pytest.mark.parametrize("when, facts, expected", [
    ({"injury_status": ["minor", "serious"]}, {"injury_status": "minor"}, True),
    ({"injury_status": ["minor", "serious"]}, {"injury_status": "none"}, False),
    ({"qualified": [True]}, {"qualified": 1}, False),
    ({"intent": "complaint"}, {"intent": "complaint"}, True),
    ({"debt_amount": {"gte": 10000}}, {"debt_amount": 25000}, True),
    ({"email": {"set": True}}, {"email": ""}, False),
    ({"any": [{"var": "intent", "eq": "complaint"}, {"var": "sentiment", "eq": "negative"}]}, {"sentiment": "negative"}, True),
    ({}, {}, True),
])
def test_rule_shorthand_is_the_same_language(when, facts, expected):
    assert when_holds(when, facts) is expected


def test_value_at_reads_paths_and_misses_quietly():
    assert value_at(VALUES, "slots.name.first") == "Ada"
    assert value_at(VALUES, "result.items.5.n") is None
    assert value_at(VALUES, "slots.status.deeper") is None


def test_validator_names_every_problem():
    assert condition_errors({"var": "slots.x", "gte": 1}, roots={"slots"}) == []
    assert condition_errors({"var": "x", "in": ["a"]}) == []
    errors = condition_errors({"var": "elsewhere.x", "exists": True}, where="if", roots={"slots"})
    assert errors == ["if: a condition needs \"var\" naming a value, e.g. \"slots.debt_amount\"",
                      f"if: operators must be among {', '.join(sorted(OPERATORS))}"]
    assert condition_errors({"all": []}) == ["condition: all/any needs a list of conditions"]
    assert condition_errors({"var": "x", "in": "a"}) == ["condition: \"in\" needs a list of values"]
    assert condition_errors("x") == ["condition: a condition must be an object"]
    assert when_errors({"email": {"exists": True}}, where="Rule 1 when") == [
        f"Rule 1 when[0]: operators must be among {', '.join(sorted(OPERATORS))}"]
    assert when_errors({"qualified": [True], "debt_amount": {"gte": 1}}) == []
    assert when_errors([1]) == ["when: must be an object mapping fields to values"]
