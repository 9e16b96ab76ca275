"""Amortization, LTV/CLTV, equity and borrowing power (rounding: see homes.models.money)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from homes.finance.rounding import ZERO, cents, ratio, whole_dollars_down

HUNDRED = Decimal(100)
TWELVE = Decimal(12)


def monthly_rate(annual_rate_pct: Decimal) -> Decimal:
    return Decimal(annual_rate_pct) / HUNDRED / TWELVE


def monthly_payment(principal: Decimal, annual_rate_pct: Decimal, months: int) -> Decimal:
    """The level payment that repays `principal` in `months` (standard formula), to the cent."""
    principal = Decimal(principal)
    if months <= 0 or principal <= 0:
        return ZERO
    r = monthly_rate(annual_rate_pct)
    if r == 0:
        return cents(principal / months)
    return cents(principal * r / (1 - (1 + r) ** -months))


def months_between(start: date, end: date) -> int:
    """Whole monthly payment dates from `start` up to and including `end`.

    A payment day the month lacks (the 29th to 31st) falls on the month's last day, as
    servicers schedule it: from January 31, February 28 is one payment.
    """
    months = (end.year - start.year) * 12 + (end.month - start.month)
    month_ends = (end + timedelta(days=1)).day == 1
    if end.day < start.day and not month_ends:
        months -= 1
    return max(months, 0)


def balance_after(
    balance: Decimal, annual_rate_pct: Decimal, payment: Decimal, payments: int
) -> Decimal:
    """Roll a balance forward by `payments` scheduled payments (interest rounded to the cent).

    A payment that does not cover the month's interest leaves the balance as it was: the
    schedule pays a loan down, it never adds to it. Such a payment comes from figures that do
    not describe an amortizing loan (a balance far above the original amount the payment is
    computed from); compounding the shortfall for years would invent a debt, in the end
    beyond any amount a money field holds.
    """
    r = monthly_rate(annual_rate_pct)
    balance = Decimal(balance)
    for _ in range(payments):
        if balance <= 0:
            return ZERO
        interest = cents(balance * r)
        if payment <= interest:
            break  # and so would every later payment: the balance does not move
        balance = balance - (payment - interest)
    return max(cents(balance), ZERO)


@dataclass(frozen=True)
class LienTerms:
    position: int
    kind: str
    original_amount: Decimal
    rate: Decimal
    term_months: int
    origination_date: date
    balance: Decimal
    balance_as_of: date
    pmi_monthly: Decimal = ZERO


def scheduled_payment(lien: LienTerms) -> Decimal:
    return monthly_payment(lien.original_amount, lien.rate, lien.term_months)


def current_balance(lien: LienTerms, today: date, payment: Decimal | None = None) -> Decimal:
    """The balance today: amortized forward from the last known balance when it is stale.
    `payment` is the lien's scheduled payment when the caller has it already.

    Payments fall on the origination day of each month (see months_between): those due
    after the statement's date up to today are taken off. Once the term has ended (its
    last payment date has passed) nothing is owed, on a line as on a loan."""
    if lien.balance_as_of >= today:
        return Decimal(lien.balance)
    made_by_today = months_between(lien.origination_date, today)
    if made_by_today >= lien.term_months:
        return ZERO
    if lien.kind == "heloc":
        # A line's balance moves with draws, not a schedule: keep the last known balance.
        return Decimal(lien.balance)
    made = months_between(lien.origination_date, lien.balance_as_of)
    due = min(made_by_today - made, max(lien.term_months - made, 0))
    if payment is None:
        payment = scheduled_payment(lien)
    return balance_after(lien.balance, lien.rate, payment, due)


@dataclass(frozen=True)
class Equity:
    value: Decimal
    lien_balance: Decimal
    first_lien_balance: Decimal
    equity: Decimal
    ltv: Decimal
    cltv: Decimal


def equity_of(value: Decimal, balances: list[tuple[int, Decimal]]) -> Equity:
    """Equity, LTV (first lien) and CLTV (all liens) of a home worth `value`."""
    value = Decimal(value)
    total = sum((b for _, b in balances), ZERO)
    first = min(balances)[1] if balances else ZERO
    return Equity(
        value=value,
        lien_balance=cents(total),
        first_lien_balance=cents(first),
        equity=cents(value - total),
        ltv=ratio(first / value) if value > 0 else ZERO,
        cltv=ratio(total / value) if value > 0 else ZERO,
    )


def borrowing_power(
    value: Decimal,
    lien_balance: Decimal,
    max_cltv: Decimal,
    min_line: Decimal | None = None,
    max_line: Decimal | None = None,
) -> Decimal:
    """max CLTV x value - liens, capped at the maximum line; zero when negative or below the
    minimum line (no line can be opened for less than the product's minimum)."""
    amount = Decimal(max_cltv) * Decimal(value) - Decimal(lien_balance)
    if max_line is not None:
        amount = min(amount, Decimal(max_line))
    amount = whole_dollars_down(amount)
    if amount <= 0 or (min_line is not None and amount < Decimal(min_line)):
        return ZERO
    return amount
