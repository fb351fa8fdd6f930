"""One condition language, for flow branches (docs/flows.md) and post-call escalation rules.

A condition is a JSON object:

    {"var": "slots.debt_amount", "gte": 10000}                  every operator given must hold
    {"var": "slots.driver_status", "in": ["delayed", "broken_down"]}
    {"all": [cond, ...]}  {"any": [cond, ...]}  {"not": cond}

`var` is a dotted path into the values the caller supplies ("slots.name.first", "results.x.0").
Operators: eq, ne, gt, gte, lt, lte, in, not_in, contains, set. `set: true` holds when the value
is there and not empty (None, "", [] and {} are empty); `set: false` when it is not.

Escalation rules also accept a shorthand `when`, a map from a field to what it must be:

    {"injury_status": ["minor", "serious"]}     one of these values     ({"var": ..., "in": [...]})
    {"intent": "complaint"}                    this value              ({"var": ..., "eq": ...})
    {"debt_amount": {"gte": 10000}}            operators               ({"var": ..., "gte": ...})

A `when` that is itself a condition (it has "var", "all", "any" or "not") is used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "set")
COMBINATORS = ("all", "any", "not")
_EMPTY = (None, "", [], {})


def value_at(root: Any, path: str) -> Any:
    """The value at a dotted path ("result.latest.text", "items.-1"), or None."""
    value = root
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _same(left: Any, right: Any) -> bool:
    # Booleans compare as booleans: a rule for `true` must not fire on the number 1.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right


def _member(value: Any, options: Any) -> bool:
    if not isinstance(options, (list, tuple, set, frozenset)):
        return False
    return any(_same(value, option) for option in options)


def _order(value: Any, op: str, expected: Any) -> bool:
    if value is None or isinstance(value, bool) or isinstance(expected, bool):
        return False
    try:
        # Numbers as said ("12000" from a transcript) compare as numbers.
        left, right = float(value), float(expected)
    except (TypeError, ValueError):
        if not (isinstance(value, str) and isinstance(expected, str)):
            return False
        left, right = value, expected  # ISO dates and times order as text
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def compare(value: Any, op: str, expected: Any) -> bool:
    """Whether `value` satisfies one operator; False for an unknown operator."""
    if op == "set":
        return (value not in _EMPTY) == bool(expected)
    if op == "eq":
        return _same(value, expected)
    if op == "ne":
        return not _same(value, expected)
    if op == "in":
        return _member(value, expected)
    if op == "not_in":
        return not _member(value, expected)
    if op == "contains":
        try:
            return value is not None and expected in value
        except TypeError:
            return False
    if op in ("gt", "gte", "lt", "lte"):
        return _order(value, op, expected)
    return False


def condition_holds(condition: Mapping, values: Any) -> bool:
    """Whether `condition` holds for `values` (a mapping that `var` paths read from)."""
    if "all" in condition:
        return all(condition_holds(c, values) for c in condition["all"])
    if "any" in condition:
        return any(condition_holds(c, values) for c in condition["any"])
    if "not" in condition:
        return not condition_holds(condition["not"], values)
    value = value_at(values, str(condition.get("var", "")))
    ops = [op for op in condition if op != "var"]
    return all(compare(value, op, condition[op]) for op in ops)


def is_condition(when: Mapping) -> bool:
    return any(key in when for key in ("var", *COMBINATORS))


def when_condition(when: Mapping) -> dict:
    """A rule's `when` as a condition: the shorthand field map becomes {"all": [...]}."""
    if is_condition(when):
        return dict(when)
    parts = []
    for name, expected in when.items():
        if isinstance(expected, list):
            parts.append({"var": name, "in": expected})
        elif isinstance(expected, Mapping):
            parts.append({"var": name, **expected})
        else:
            parts.append({"var": name, "eq": expected})
    return {"all": parts} if parts else {"all": []}


def when_holds(when: Mapping, facts: Mapping) -> bool:
    """Whether a rule's `when` holds for `facts`; an empty `when` always holds."""
    return condition_holds(when_condition(when or {}), facts)


# --- validation ------------------------------------------------------------------------------

def condition_errors(condition: Any, *, where: str = "condition", roots: set[str] | frozenset[str] | None = None) -> list[str]:
    """Every problem in a condition, as sentences; [] when it is valid. With `roots`, a `var`
    must start with one of them."""
    errors: list[str] = []
    if not isinstance(condition, Mapping):
        return [f"{where}: a condition must be an object"]
    if "all" in condition or "any" in condition:
        items = condition.get("all", condition.get("any"))
        if not isinstance(items, list) or not items:
            return [f"{where}: all/any needs a list of conditions"]
        for n, item in enumerate(items):
            errors += condition_errors(item, where=f"{where}[{n}]", roots=roots)
        return errors
    if "not" in condition:
        return condition_errors(condition["not"], where=f"{where}.not", roots=roots)
    var = condition.get("var")
    if not isinstance(var, str) or not var or (roots is not None and var.split(".")[0] not in roots):
        example = "slots.debt_amount" if roots else "debt_amount"
        errors.append(f"{where}: a condition needs \"var\" naming a value, e.g. \"{example}\"")
    ops = set(condition) - {"var"}
    if not ops or ops - set(OPERATORS):
        errors.append(f"{where}: operators must be among {', '.join(sorted(OPERATORS))}")
    for op in ("in", "not_in"):
        if op in condition and not isinstance(condition[op], list):
            errors.append(f"{where}: \"{op}\" needs a list of values")
    return errors


def when_errors(when: Any, *, where: str = "when") -> list[str]:
    """Every problem in an escalation rule's `when`; [] when it is valid."""
    if not isinstance(when, Mapping):
        return [f"{where}: must be an object mapping fields to values"]
    if not when:
        return []
    return condition_errors(when_condition(when), where=where)
