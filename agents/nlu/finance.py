"""Money, debts, work and income: what lead qualification and billing calls ask about."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from agents.nlu.normalize import normalize

__all__ = [
    "Money", "DebtType", "EmploymentStatus", "IncomePeriod", "Income",
    "extract_money", "extract_debt_types", "extract_debt_type", "extract_employment_status", "extract_income",
]


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str = "USD"


_CURRENCY_SIGNS = {"$": "USD", "£": "GBP", "€": "EUR"}
_CURRENCY_WORDS = {
    "dollar": "USD", "dollars": "USD", "buck": "USD", "bucks": "USD", "usd": "USD",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "gbp": "GBP", "euro": "EUR", "euros": "EUR", "eur": "EUR",
}
_MULTIPLIERS = {"k": 1000, "grand": 1000, "thousand": 1000, "g": 1000, "m": 1_000_000, "mil": 1_000_000,
                "million": 1_000_000}
_MONEY_RE = re.compile(
    r"(?P<sign>[$£€])?\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s?"
    r"(?P<mult>k|grand|thousand|g|mil|million|m)?\b\s?"
    r"(?P<unit>dollars?|bucks?|usd|pounds?|quid|gbp|euros?|eur)?\b"
    r"(?:\s?(?:and\s)?(?P<cents>\d{1,2})\s?(?:cents?|pence|p)\b)?"
)


def _amount(m: re.Match[str]) -> Decimal | None:
    try:
        value = Decimal(m.group("num").replace(",", ""))
    except InvalidOperation:
        return None
    if m.group("mult"):
        value *= _MULTIPLIERS[m.group("mult")]
    if m.group("cents"):
        value += Decimal(m.group("cents")) / 100
    return value


def _tidy(amount: Decimal) -> Decimal:
    """12500 rather than 1.25E+4 or 12500.0; cents kept as said."""
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


def _money_matches(s: str, *, require_currency: bool) -> list[tuple[re.Match[str], Money]]:
    found = []
    for m in _MONEY_RE.finditer(s):
        # Lone "m"/"g" are too often something else ("5 m" could be metres); need a sign with them.
        if m.group("mult") in ("m", "g") and not m.group("sign"):
            continue
        has_currency = bool(m.group("sign") or m.group("unit") or m.group("mult") in ("k", "grand"))
        if require_currency and not has_currency:
            continue
        amount = _amount(m)
        if amount is None:
            continue
        currency = _CURRENCY_SIGNS.get(m.group("sign") or "", None) or _CURRENCY_WORDS.get(m.group("unit") or "", "USD")
        found.append((m, Money(amount=_tidy(amount), currency=currency)))
    return found


def _prepare(text: str) -> str:
    s = normalize(text.replace("£", " £").replace("€", " €"), digits=True)
    s = re.sub(r"(?<=\d) (?=k\b)", "", s)
    return s


def extract_money(text: str, *, require_currency: bool = True) -> Money | None:
    """An amount of money: "$12,500", "12.5k", "twelve thousand five hundred dollars", "fifty
    bucks", "two grand". Without a currency word or sign, numbers are not money unless
    `require_currency=False` (for answers to "how much?")."""
    found = _money_matches(_prepare(text), require_currency=require_currency)
    if not found:
        return None
    return found[0][1]


# --- debts ---------------------------------------------------------------------------

class DebtType(StrEnum):
    CREDIT_CARD = "credit_card"
    MEDICAL = "medical"
    PERSONAL_LOAN = "personal_loan"
    STUDENT_LOAN = "student_loan"
    PAYDAY = "payday"
    AUTO = "auto"


_DEBTS = [
    (DebtType.CREDIT_CARD, r"\b(?:credit ?cards?|cards|visa|mastercard|master card|amex|american express|discover card|"
                           r"store cards?|capital one|chase card)\b"),
    (DebtType.MEDICAL, r"\b(?:medical|hospital|doctors?|surgery|er bills?|emergency room|dental|dentist|ambulance)\b"),
    (DebtType.PERSONAL_LOAN, r"\b(?:personal loans?|signature loans?|bank loans?|installment loans?|loan from (?:my|the) bank|"
                             r"line of credit|consolidation loans?)\b"),
    (DebtType.STUDENT_LOAN, r"\b(?:student loans?|student debt|college loans?|school loans?|sallie mae|navient|"
                            r"federal loans?|tuition)\b"),
    (DebtType.PAYDAY, r"\b(?:payday loans?|payday|cash advances?|title loans?|check cashing)\b"),
    (DebtType.AUTO, r"\b(?:car loans?|auto loans?|car payments?|truck loans?|truck payments?|vehicle loans?|car note|"
                    r"auto financ\w*|car financ\w*)\b"),
]
_DEBTS_RE = [(label, re.compile(p)) for label, p in _DEBTS]


def extract_debt_types(text: str) -> list[DebtType]:
    """Every kind of debt mentioned, in the order the caller said them."""
    s = normalize(text)
    hits: list[tuple[int, DebtType]] = []
    for label, pattern in _DEBTS_RE:
        m = pattern.search(s)
        if m and not re.search(r"\b(?:no|not|never|without)\b(?: \w+){0,2} $", s[: m.start()]):
            hits.append((m.start(), label))
    return [label for _, label in sorted(hits, key=lambda hit: hit[0])]


def extract_debt_type(text: str) -> DebtType | None:
    types = extract_debt_types(text)
    return types[0] if types else None


# --- employment and income -----------------------------------------------------------

class EmploymentStatus(StrEnum):
    EMPLOYED = "employed"
    SELF_EMPLOYED = "self_employed"
    UNEMPLOYED = "unemployed"
    RETIRED = "retired"


# Order matters: "self employed" and "unemployed" both contain "employed".
_EMPLOYMENT = [
    (EmploymentStatus.RETIRED, r"\b(?:retired|retiree|on (?:a|my) pension|pensioner|on social security)\b"),
    (EmploymentStatus.UNEMPLOYED, r"\b(?:unemployed|out of work|lost my job|laid off|let go|between jobs|not working|"
                                  r"do not (?:have a job|work)|no job|jobless|on unemployment|looking for (?:work|a job)|"
                                  r"not employed|got fired|was fired)\b"),
    (EmploymentStatus.SELF_EMPLOYED, r"\b(?:self employed|self-employed|own (?:my own )?(?:business|company)|"
                                     r"run my own|freelanc\w*|contractor|independent contractor|1099|owner operator|"
                                     r"work for myself|my own boss|gig work|uber|lyft|doordash)\b"),
    (EmploymentStatus.EMPLOYED, r"\b(?:employed|i work (?:at|for|as|in)|i am working|working (?:at|for|as)|full time|"
                                r"part time|full-time|part-time|my job|have a job|got a job|w2|salaried|on salary|"
                                r"my employer|i am a \w+ at)\b"),
]
_EMPLOYMENT_RE = [(label, re.compile(p)) for label, p in _EMPLOYMENT]


def extract_employment_status(text: str) -> EmploymentStatus | None:
    s = normalize(text)
    for label, pattern in _EMPLOYMENT_RE:
        if pattern.search(s):
            return label
    return None


class IncomePeriod(StrEnum):
    HOURLY = "hourly"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    SEMIMONTHLY = "semimonthly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


_PER_YEAR = {IncomePeriod.HOURLY: 2080, IncomePeriod.WEEKLY: 52, IncomePeriod.BIWEEKLY: 26,
             IncomePeriod.SEMIMONTHLY: 24, IncomePeriod.MONTHLY: 12, IncomePeriod.YEARLY: 1}


@dataclass(frozen=True)
class Income:
    amount: Decimal
    period: IncomePeriod
    period_inferred: bool = False  # no period was said; guessed from the size of the amount

    def annual(self) -> Decimal:
        """Yearly income (hourly assumes 40 hours a week, 52 weeks)."""
        return self.amount * _PER_YEAR[self.period]

    def monthly(self) -> Decimal:
        return (self.annual() / 12).quantize(Decimal("0.01"))


_PERIODS = [
    (IncomePeriod.BIWEEKLY, r"\b(?:every (?:2|two|other) weeks?|biweekly|bi-weekly|fortnight\w*|every other friday)\b"),
    (IncomePeriod.SEMIMONTHLY, r"\b(?:twice a month|semi ?monthly|2 times a month|1st and (?:the )?15th)\b"),
    (IncomePeriod.HOURLY, r"\b(?:an hour|per hour|a hour|hourly|/hr|/hour|bucks an hour)\b"),
    (IncomePeriod.WEEKLY, r"\b(?:a week|per week|weekly|each week|every week|/week|/wk)\b"),
    (IncomePeriod.MONTHLY, r"\b(?:a month|per month|monthly|each month|every month|/month|/mo)\b"),
    (IncomePeriod.YEARLY, r"\b(?:a year|per year|yearly|annually|annual|each year|every year|/year|/yr|salary of|"
                          r"per annum|a yr)\b"),
]
_PERIODS_RE = [(label, re.compile(p)) for label, p in _PERIODS]
_INCOME_CUE = re.compile(r"\b(?:make|makes|making|made|earn|earns|earning|income|salary|paid|pay|bring home|"
                         r"take home|gross|net|wage|wages|get|gets|receive|bring in)\b")


def extract_income(text: str) -> Income | None:
    """Income and its period: "I make about three thousand a month" -> 3000 monthly; "60k a year",
    "$25 an hour", "1200 every two weeks". Without a period it is guessed from the size."""
    s = _prepare(text)
    period = next((label for label, pattern in _PERIODS_RE if pattern.search(s)), None)
    if period is None and not _INCOME_CUE.search(s):
        return None
    found = _money_matches(s, require_currency=False)
    # "every 2 weeks": the 2 is not the income.
    found = [(m, money) for m, money in found
             if not re.match(r"\s*(?:weeks?|times|hours? a week|days?)\b", s[m.end():]) and money.amount >= 1]
    if not found:
        return None
    amount = max(found, key=lambda f: f[1].amount)[1].amount if len(found) > 1 and period is None else found[0][1].amount
    inferred = period is None
    if period is None:
        period = IncomePeriod.HOURLY if amount < 200 else IncomePeriod.MONTHLY if amount < 15000 else IncomePeriod.YEARLY
    return Income(amount=amount, period=period, period_inferred=inferred)
