"""Entity extractors for the dialog engine, in one place.

Every extractor takes the caller's text (as speech recognition wrote it) and returns a typed
value, or None when the text does not contain one. They never raise on odd input.
The implementations live in small modules by topic; import from here.
"""

from agents.nlu.answers import Answer, extract_yes_no
from agents.nlu.contact import (
    PersonName,
    Postcode,
    extract_account_number,
    extract_email,
    extract_name,
    extract_phone,
    extract_postcode,
)
from agents.nlu.finance import (
    DebtType,
    EmploymentStatus,
    Income,
    IncomePeriod,
    Money,
    extract_debt_type,
    extract_debt_types,
    extract_employment_status,
    extract_income,
    extract_money,
)
from agents.nlu.when import When, extract_date_of_birth, extract_datetime, extract_eta

__all__ = [
    "Answer", "DebtType", "EmploymentStatus", "Income", "IncomePeriod", "Money", "PersonName", "Postcode", "When",
    "extract_account_number", "extract_date_of_birth", "extract_datetime", "extract_debt_type",
    "extract_debt_types", "extract_email", "extract_employment_status", "extract_eta", "extract_income",
    "extract_money", "extract_name", "extract_phone", "extract_postcode", "extract_yes_no",
]
