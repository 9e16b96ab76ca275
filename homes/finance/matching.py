"""Which offers a home is eligible for, and their benefit to the member (pure; no database).

Benefits of different kinds are ranked by a yearly dollar score: 12 x monthly refinance
savings, 12 x PMI saved per month, and for lines (HELOC, home-equity loan, cash-out) the
available amount x the institution's `line_score_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from homes.finance.equity import borrowing_power, monthly_payment
from homes.finance.rounding import ZERO, cents, whole_dollars_down

TWELVE = Decimal(12)


@dataclass(frozen=True)
class LienState:
    position: int
    balance: Decimal  # today (amortized forward)
    rate: Decimal
    payment: Decimal  # scheduled monthly payment
    pmi_monthly: Decimal
    remaining_months: int
    kind: str = "first_mortgage"

    @property
    def is_open(self) -> bool:
        """Whether the lien still encumbers the home: while anything is owed on it, and a
        line of credit until its term ends, drawn or not."""
        return self.balance > 0 or (self.kind == "heloc" and self.remaining_months > 0)


@dataclass(frozen=True)
class HomeState:
    value: Decimal | None
    confidence: int
    owner_occupied: bool
    liens: tuple[LienState, ...]
    lien_balance: Decimal
    equity: Decimal | None
    ltv: Decimal | None
    cltv: Decimal | None

    @property
    def first_lien(self) -> LienState | None:
        return min(self.liens, key=lambda lien: lien.position) if self.liens else None


@dataclass(frozen=True)
class ProductTerms:
    id: int
    kind: str
    rate_type: str
    apr: Decimal | None
    margin: Decimal | None
    rate_floor: Decimal | None
    rate_cap: Decimal | None
    max_cltv: Decimal
    min_amount: Decimal
    max_amount: Decimal | None
    term_months: int
    requires_owner_occupied: bool
    max_existing_liens: int
    min_confidence: int
    min_equity: Decimal
    min_rate_gap_bps: int
    max_ltv_for_pmi: Decimal

    @classmethod
    def of(cls, product) -> ProductTerms:
        return cls(**{name: getattr(product, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Match:
    product_id: int
    benefit_kind: str
    benefit: Decimal
    score: Decimal
    amount: Decimal | None
    rate: Decimal | None  # the offer's APR; None where it lends nothing (PMI removal)
    monthly_payment: Decimal | None


def product_rate(product: ProductTerms, prime_rate: Decimal) -> Decimal:
    """Fixed APR, or index + margin held between the floor and the cap."""
    if product.rate_type == "fixed":
        return Decimal(product.apr or 0)
    rate = Decimal(prime_rate) + Decimal(product.margin or 0)
    if product.rate_floor is not None:
        rate = max(rate, Decimal(product.rate_floor))
    if product.rate_cap is not None:
        rate = min(rate, Decimal(product.rate_cap))
    return max(rate, ZERO)


def _line(home, product, rate, line_score_rate):
    amount = borrowing_power(
        home.value, home.lien_balance, product.max_cltv, product.min_amount, product.max_amount
    )
    if amount <= 0:
        return None
    if product.kind == "heloc":  # interest-only during the draw period
        payment = cents(amount * rate / 100 / TWELVE)
    else:
        payment = monthly_payment(amount, rate, product.term_months)
    score = cents(amount * line_score_rate)
    return Match(product.id, "available_line", amount, score, amount, rate, payment)


def _cash_out(home, product, rate, line_score_rate):
    if home.first_lien is None:
        return None
    loan = Decimal(product.max_cltv) * home.value
    if product.max_amount is not None:
        loan = min(loan, Decimal(product.max_amount))
    loan = whole_dollars_down(loan)
    # Rounded once, after the subtraction: rounding each side first could add a dollar.
    cash = whole_dollars_down(loan - home.lien_balance)
    if cash <= 0 or loan < product.min_amount:
        return None
    payment = monthly_payment(loan, rate, product.term_months)
    return Match(
        product.id, "available_line", cash, cents(cash * line_score_rate), loan, rate, payment
    )


def _rate_term(home, product, rate):
    first = home.first_lien
    if first is None or first.balance <= 0:
        return None
    if (first.rate - rate) * 100 < product.min_rate_gap_bps:
        return None
    # The amounts, not the rounded CLTV: 80.004% must not pass for 80.00%.
    if home.lien_balance > Decimal(product.max_cltv) * home.value:
        return None
    if first.balance < product.min_amount or (
        product.max_amount is not None and first.balance > product.max_amount
    ):
        return None
    new_payment = monthly_payment(first.balance, rate, product.term_months)
    savings = first.payment - new_payment
    if savings <= 0:
        return None
    return Match(
        product.id, "monthly_savings", savings, cents(savings * TWELVE), first.balance, rate,
        new_payment,
    )  # fmt: skip


def _pmi(home, product):
    first = home.first_lien
    if first is None or first.pmi_monthly <= 0:
        return None
    # The amounts, not the rounded LTV: 80.004% must not pass for 80.00%.
    if first.balance > Decimal(product.max_ltv_for_pmi) * home.value:
        return None
    # No rate: removing PMI lends nothing, and the mortgage's note rate is no APR of the offer.
    return Match(
        product.id, "pmi_saved", first.pmi_monthly, cents(first.pmi_monthly * TWELVE), None,
        None, first.payment or None,  # the scheduled payment holds no PMI
    )  # fmt: skip


def match_one(
    home: HomeState, product: ProductTerms, *, prime_rate: Decimal, line_score_rate: Decimal
) -> Match | None:
    """The offer's benefit to this home, or None when the home is not eligible."""
    if home.value is None or home.value <= 0:
        return None
    if product.requires_owner_occupied and not home.owner_occupied:
        return None
    if home.confidence < product.min_confidence:
        return None
    if (home.equity or ZERO) < product.min_equity:
        return None
    rate = product_rate(product, prime_rate)
    if product.kind in ("heloc", "home_equity_loan"):
        # A paid-off loan is no longer a lien on the home; an open line is, drawn or not.
        if sum(1 for lien in home.liens if lien.is_open) > product.max_existing_liens:
            return None
        return _line(home, product, rate, line_score_rate)
    if product.kind == "cash_out_refi":
        return _cash_out(home, product, rate, line_score_rate)
    if product.kind == "rate_term_refi":
        return _rate_term(home, product, rate)
    if product.kind == "pmi_removal":
        return _pmi(home, product)
    return None


def rank_matches(
    home: HomeState,
    products: list[ProductTerms],
    *,
    prime_rate: Decimal,
    line_score_rate: Decimal,
) -> list[Match]:
    """Eligible offers, best first (higher yearly score, then the product id for stability)."""
    matches = [
        m
        for p in products
        if (m := match_one(home, p, prime_rate=prime_rate, line_score_rate=line_score_rate))
    ]
    return sorted(matches, key=lambda m: (-m.score, m.product_id))
