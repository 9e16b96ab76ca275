"""Advertising trigger terms (Regulation Z §1026.16(d) for HELOCs, §1026.24(d) for closed-end
credit): copy that states one of them must carry the corresponding disclosures."""

from __future__ import annotations

import re
import unicodedata

# A number as advertising writes it: digits ("30", "1,000") or words ("thirty", "twenty-five").
_ONES = "one|two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_DASH = r"[\s\-\u2010-\u2015]"  # a space or any hyphen or dash
_WORDS = rf"(?:(?:{_TENS})(?:{_DASH}?(?:{_ONES}))?|{_TEENS}|{_ONES})"
_NUMBER = (
    rf"(?:\d[\d,]*(?:\.\d+)?|{_WORDS}(?:{_DASH}?hundred(?:{_DASH}?(?:and{_DASH})?{_WORDS})?)?)"
)
# An amount of money: "$199", "$ 1,250.00", "USD 199", "199 dollars", "199 USD".
_MONEY = r"(?:(?:\$|\busd)\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s*(?:dollars?|usd)\b)"
_PER_MONTH = r"\s*(?:/\s*|per\s+|an?\s+|each\s+|every\s+)?(?:mo\b|mos\b|mths?\b|mnths?\b|month)"

#: The label of a discount from prime (the disclosures must then say how long it lasts).
PRIME_MINUS = 'a rate below prime ("prime minus")'

# (label shown in the error, pattern in the copy)
TRIGGER_TERMS = [
    # "$99/mo", "$99 a month", "$99 monthly", "$250 every month", "199 dollars a month"
    ("a stated payment", re.compile(_MONEY + _PER_MONTH, re.I)),
    (
        "a stated payment",
        re.compile(r"\b(monthly )?payments? (of|as low as|from|starting at|under|just)\b", re.I),
    ),
    # "Payment: $199", "monthly payment $199", "monthly payments only $199"
    (
        "a stated payment",
        re.compile(
            r"\b(?:monthly\s+payments?|payments?\s*:)\s*(?:is\s+|are\s+|of\s+)?"
            r"(?:only\s+|just\s+)?(?:\$|\busd|\d)",
            re.I,
        ),
    ),
    # "30-year", "15 yr", "thirty years", "fifteen-year"
    ("a term in years", re.compile(rf"\b(?:\d{{1,2}}|{_WORDS}){_DASH}?(?:year|yr)s?\b", re.I)),
    # "over 180 months", "a term of 120 months", "pay it back in 60 months" (not an
    # introductory rate's "for 12 months", which INTRO below discloses)
    (
        "a repayment period",
        re.compile(
            r"\b(over|term of|repay(ment period of)?( it)?( in| over)?|pay (it )?back (in|over))"
            rf"\s+(?:up to\s+)?{_NUMBER}{_DASH}?months?\b",
            re.I,
        ),
    ),
    # "a 120-month term", "a 180 month repayment period", "180 months to repay"
    (
        "a repayment period",
        re.compile(
            rf"\b{_NUMBER}{_DASH}?months?\s+(?:term|repayment period|to\s+(?:re)?pay)\b", re.I
        ),
    ),
    # "120 payments", "60 easy payments", "sixty monthly installments"
    (
        "a number of payments",
        re.compile(
            rf"\b{_NUMBER}\s+(?:(?:easy|low|small|monthly|fixed|equal|affordable|simple)\s+)*"
            r"(?:payments|install?ments)\b",
            re.I,
        ),
    ),
    # "prime minus 0.25%", "prime - 0.25%", "0.50% below prime"
    (
        PRIME_MINUS,
        re.compile(
            r"\bprime\s*(minus|-|\u2013|\u2212)|\b(below|under|less than)\s+(the\s+)?prime\b",
            re.I,
        ),
    ),
    # "down payment", "downpayment", "10% down", "$0 down", "no money down"
    (
        "a down payment",
        re.compile(
            r"\bdown[\s\-]?payments?\b"
            r"|(?:\d\s*%|\$\s?[\d,]+(?:\.\d+)?|\b(?:no|zero|nothing)(?:\s+money)?)"
            r"\s*down\b(?!\s+(?:from|since|on|over|by|to)\b)",
            re.I,
        ),
    ),
    ("a finance charge", re.compile(r"\bfinance\s+charges?\b", re.I)),
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


def plain(text: str) -> str:
    """The text as it reads: compatibility forms folded (a fullwidth "\uff04" is "$"), and
    the characters that show nothing (zero-width spaces and joiners, soft hyphens) dropped."""
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def trigger_terms(text: str) -> list[str]:
    text = plain(text)
    found: list[str] = []
    for label, pattern in TRIGGER_TERMS:
        if pattern.search(text) and label not in found:
            found.append(label)
    return found


def missing_disclosures(product) -> str:
    """An error message naming what the disclosures lack, or '' when the copy is compliant."""
    copy = f"{product.title or ''}\n{product.summary or ''}"
    triggers = trigger_terms(copy)
    if not triggers:
        return ""
    disclosures = plain(product.disclosures)
    required = [APR, TERMS]
    if product.rate_type == "indexed":
        required.append(VARIABLE)
    if PRIME_MINUS in triggers:
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
