"""Advertising trigger terms (Regulation Z §1026.16(d) for HELOCs, §1026.24(d) for closed-end
credit): copy that states one of them must carry the corresponding disclosures."""

from __future__ import annotations

import re

# (label shown in the error, pattern in the copy)
TRIGGER_TERMS = [
    # "$99/mo", "$99 a month", "$99 monthly", "$250 every month"
    (
        "a stated payment",
        re.compile(
            r"\$\s?[\d,]+(\.\d\d)?\s*(/\s*|per\s+|a\s+|each\s+|every\s+)?(mo\b|month)", re.I
        ),
    ),
    (
        "a stated payment",
        re.compile(r"\b(monthly )?payments? (of|as low as|from|starting at|under|just)\b", re.I),
    ),
    ("a term in years", re.compile(r"\b\d{1,2}[- ]?(year|yr)s?\b", re.I)),
    # "over 180 months", "a term of 120 months", "pay it back in 60 months" (not an
    # introductory rate's "for 12 months", which INTRO below discloses)
    (
        "a repayment period",
        re.compile(
            r"\b(over|term of|repay(ment period of)?( it)?( in| over)?|pay (it )?back (in|over))"
            r"\s+\d+[- ]?months?\b",
            re.I,
        ),
    ),
    # "a 120-month term", "a 180 month repayment period"
    ("a repayment period", re.compile(r"\b\d+[- ]?months?\s+(term|repayment period)\b", re.I)),
    ("a number of payments", re.compile(r"\b\d+ (monthly )?(payments|install?ments)\b", re.I)),
    ('"prime minus"', re.compile(r"\bprime\s*(minus|-|\u2013|\u2212)", re.I)),
    ("a down payment", re.compile(r"\bdown payment\b", re.I)),
    ("a finance charge", re.compile(r"\bfinance charge\b", re.I)),
]

# (what must be disclosed, patterns of which one must appear in the disclosures)
APR = ("the annual percentage rate (APR)", re.compile(r"\bAPR\b|annual percentage rate", re.I))
TERMS = ("the repayment terms", re.compile(r"\brepay|\bterm\b|\bpayments?\b", re.I))
VARIABLE = (
    "that the rate is variable and its maximum",
    re.compile(r"variable.*(maximum|cap)|(maximum|cap).*variable", re.I | re.S),
)
INTRO = (
    "how long the discounted rate lasts and the rate after it",
    re.compile(r"introductory|after (the )?(first )?\d+ months|for \d+ months", re.I),
)


def trigger_terms(text: str) -> list[str]:
    found: list[str] = []
    for label, pattern in TRIGGER_TERMS:
        if pattern.search(text or "") and label not in found:
            found.append(label)
    return found


def missing_disclosures(product) -> str:
    """An error message naming what the disclosures lack, or '' when the copy is compliant."""
    copy = f"{product.title or ''}\n{product.summary or ''}"
    triggers = trigger_terms(copy)
    if not triggers:
        return ""
    disclosures = product.disclosures or ""
    required = [APR, TERMS]
    if product.rate_type == "indexed":
        required.append(VARIABLE)
    if '"prime minus"' in triggers:
        required.append(INTRO)
    missing = [label for label, pattern in required if not pattern.search(disclosures)]
    if product.rate_type == "indexed" and product.rate_cap is None and VARIABLE[0] not in missing:
        missing.append("the maximum rate (set the rate cap)")
    if not missing:
        return ""
    return (
        f"The copy uses advertising trigger terms ({', '.join(triggers)}), so the disclosures "
        f"must state {'; '.join(missing)}."
    )
