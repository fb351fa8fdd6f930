"""Money, debt types, employment status and income."""

from decimal import Decimal

import pytest

from agents.nlu.entities import (
    DebtType,
    EmploymentStatus,
    IncomePeriod,
    Money,
    extract_debt_type,
    extract_debt_types,
    extract_employment_status,
    extract_income,
    extract_money,
)

pytestmark = []


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("twelve thousand five hundred dollars", "12500", "USD"),
    ("$12,500", "12500", "USD"),
    ("12.5k", "12500", "USD"),
    ("I owe about 12.5 k", "12500", "USD"),
    ("fifty bucks", "50", "USD"),
    ("two grand", "2000", "USD"),
    ("one hundred and fifty dollars", "150", "USD"),
    ("twenty three dollars and fifty cents", "23.5", "USD"),
    ("$49.99", "49.99", "USD"),
    ("$1.2 million", "1200000", "USD"),
    ("£300", "300", "GBP"),
    ("three hundred pounds", "300", "GBP"),
    ("i want to pay to hundred dollars", "200", "USD"),
])
def test_money(text, amount, currency):
    assert extract_money(text) == Money(Decimal(amount), currency)


@pytest.mark.parametrize("text", ["I have 3 kids", "account 10042", "at 4:30", ""])
def test_money_needs_a_currency(text):
    assert extract_money(text) is None


def test_money_without_currency_when_asked():
    assert extract_money("three thousand", require_currency=False) == Money(Decimal(3000))


@pytest.mark.parametrize(("text", "expected"), [
    ("I have credit card debt and some medical bills", [DebtType.CREDIT_CARD, DebtType.MEDICAL]),
    ("student loans mostly", [DebtType.STUDENT_LOAN]),
    ("a payday loan and my car payment", [DebtType.PAYDAY, DebtType.AUTO]),
    ("no credit cards, just a personal loan", [DebtType.PERSONAL_LOAN]),
    ("hospital bills from last year", [DebtType.MEDICAL]),
    ("I don't have any student loans", []),
    ("hello", []),
])
def test_debt_types(text, expected):
    assert extract_debt_types(text) == expected
    assert extract_debt_type(text) == (expected[0] if expected else None)


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm self-employed", EmploymentStatus.SELF_EMPLOYED),
    ("I drive for uber", EmploymentStatus.SELF_EMPLOYED),
    ("I'm retired", EmploymentStatus.RETIRED),
    ("I lost my job last month", EmploymentStatus.UNEMPLOYED),
    ("I'm not working right now", EmploymentStatus.UNEMPLOYED),
    ("I'm unemployed", EmploymentStatus.UNEMPLOYED),
    ("I work at Walmart full time", EmploymentStatus.EMPLOYED),
    ("employed", EmploymentStatus.EMPLOYED),
    ("what's my balance", None),
])
def test_employment_status(text, expected):
    assert extract_employment_status(text) == expected


@pytest.mark.parametrize(("text", "amount", "period", "annual"), [
    ("I make about three thousand a month", "3000", IncomePeriod.MONTHLY, "36000"),
    ("60k a year", "60000", IncomePeriod.YEARLY, "60000"),
    ("$25 an hour", "25", IncomePeriod.HOURLY, "52000"),
    ("1200 every two weeks", "1200", IncomePeriod.BIWEEKLY, "31200"),
    ("I bring home around 800 a week", "800", IncomePeriod.WEEKLY, "41600"),
    ("I get paid twice a month, about 1500", "1500", IncomePeriod.SEMIMONTHLY, "36000"),
])
def test_income(text, amount, period, annual):
    income = extract_income(text)
    assert (income.amount, income.period, income.period_inferred) == (Decimal(amount), period, False)
    assert income.annual() == Decimal(annual)


def test_income_period_guessed_from_size():
    income = extract_income("my salary is 55,000")
    assert (income.amount, income.period, income.period_inferred) == (Decimal(55000), IncomePeriod.YEARLY, True)
    assert extract_income("I make like two grand").period is IncomePeriod.MONTHLY
    assert extract_income("I make like two grand").monthly() == Decimal("2000.00")


@pytest.mark.parametrize("text", ["I have two kids", "hello", ""])
def test_income_absent(text):
    assert extract_income(text) is None
