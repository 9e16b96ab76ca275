import datetime
from decimal import Decimal as D

import pytest

from homes.finance.equity import (
    LienTerms,
    balance_after,
    borrowing_power,
    current_balance,
    equity_of,
    monthly_payment,
    months_between,
)
from homes.finance.matching import HomeState, LienState, ProductTerms, product_rate, rank_matches


def test_monthly_payment__200k_at_6pct_30y__matches_published_schedule():
    assert monthly_payment(D(200000), D(6), 360) == D("1199.10")


def test_balance_after__12_payments__matches_schedule_with_cent_rounding():
    # Each month's interest is rounded to the cent (as lenders' schedules are); the
    # closed-form balance is $197,543.98, the cent-by-cent schedule $197,543.99.
    assert balance_after(D(200000), D(6), D("1199.10"), 12) == D("197543.99")
    # First payment: $1,000.00 interest, $199.10 principal.
    assert balance_after(D(200000), D(6), D("1199.10"), 1) == D("199800.90")


def test_balance_after__full_term__is_paid_off():
    assert balance_after(D(200000), D(6), D("1199.10"), 360) <= D("5")


def test_current_balance__stale_balance__is_amortized_forward():
    lien = LienTerms(
        1, "first_mortgage", D(200000), D(6), 360,
        datetime.date(2024, 1, 1), D(200000), datetime.date(2024, 1, 1),
    )  # fmt: skip
    assert current_balance(lien, datetime.date(2025, 1, 1)) == D("197543.99")
    assert current_balance(lien, datetime.date(2024, 12, 31)) > D("197543.99")  # 11 payments
    assert current_balance(lien, datetime.date(2024, 1, 1)) == D(200000)
    assert current_balance(lien, datetime.date(2060, 1, 1)) == D(0)


@pytest.mark.parametrize(
    ("start", "end", "payments"),
    [
        ("2026-01-15", "2026-02-14", 0),
        ("2026-01-15", "2026-02-15", 1),
        ("2026-01-31", "2026-02-28", 1),  # no February 31st: the payment is on the 28th
        ("2026-01-31", "2026-02-27", 0),
        ("2028-02-29", "2029-02-28", 12),  # leap day: the month's last day in other years
        ("2026-01-30", "2026-04-29", 2),  # April has a 30th: not a month end
        ("2026-03-31", "2026-04-30", 1),
        ("2026-05-10", "2026-04-10", 0),
    ],
)
def test_months_between__payment_days_the_month_lacks_fall_on_its_last_day(start, end, payments):
    as_date = datetime.date.fromisoformat
    assert months_between(as_date(start), as_date(end)) == payments


def test_current_balance__heloc__keeps_last_known_balance():
    lien = LienTerms(
        2, "heloc", D(50000), D(8), 120,
        datetime.date(2024, 1, 1), D(30000), datetime.date(2024, 1, 1),
    )  # fmt: skip
    assert current_balance(lien, datetime.date(2025, 6, 1)) == D(30000)


def test_current_balance__heloc_past_its_term__owes_nothing():
    """A 10-year line opened in 2010 whose last statement (2012) showed $30,000 drawn: its
    term ended in 2020, so in 2025 nothing is owed on it."""
    line = LienTerms(
        2, "heloc", D(50000), D(8), 120,
        datetime.date(2010, 1, 1), D(30000), datetime.date(2012, 1, 1),
    )  # fmt: skip
    assert current_balance(line, datetime.date(2025, 1, 1)) == D(0)
    assert current_balance(line, datetime.date(2019, 12, 31)) == D(30000)  # still open


PAYMENT = D("1199.10")  # $200,000 at 6% over 360 months (published schedule)


def _mortgage(origination, balance, as_of):
    return LienTerms(1, "first_mortgage", D(200000), D(6), 360, origination, balance, as_of)


@pytest.mark.parametrize(
    ("lien", "today", "expected"),
    [
        # Payments fall on the 15th (the origination day). The statement of March 10 shows
        # one payment made; by March 20 the March 15 payment is made too: the published
        # schedule's balance after two payments is $199,600.80.
        (
            _mortgage(datetime.date(2024, 1, 15), D("199800.90"), datetime.date(2024, 3, 10)),
            datetime.date(2024, 3, 20),
            D("199600.80"),
        ),
        # The same statement on March 14: the March 15 payment is not made yet.
        (
            _mortgage(datetime.date(2024, 1, 15), D("199800.90"), datetime.date(2024, 3, 10)),
            datetime.date(2024, 3, 14),
            D("199800.90"),
        ),
        # The 360th and last payment was on January 15, 2030: on January 20 the loan is
        # past its term and paid off.
        (
            _mortgage(
                datetime.date(2000, 1, 15),
                balance_after(D(200000), D(6), PAYMENT, 349),
                datetime.date(2029, 3, 10),
            ),
            datetime.date(2030, 1, 20),
            D(0),
        ),
    ],
    ids=["payment-after-statement-day", "before-the-payment-day", "past-its-term"],
)
def test_current_balance__statement_dated_between_payment_days__counts_the_payments_made(
    lien, today, expected
):
    """Payments are due on the origination day of each month: a payment made after the
    statement's date is taken off even when today is not a month past the statement, and a
    loan whose last payment date has passed owes nothing."""
    assert current_balance(lien, today) == expected


@pytest.mark.parametrize(
    ("value", "liens", "cltv", "expected"),
    [
        (D(300000), D(200000), D("0.80"), D(40000)),  # $300,000 x 0.80 - $200,000
        (D(100000), D(50000), D("0.90"), D(40000)),  # $100,000 x 0.90 - $50,000
        (D(200000), D(190000), D("0.80"), D(0)),  # negative → zero
    ],
)
def test_borrowing_power__hand_worked_examples(value, liens, cltv, expected):
    assert borrowing_power(value, liens, cltv) == expected


def test_borrowing_power__capped_by_product_min_and_max():
    assert borrowing_power(D(1000000), D(0), D("0.80"), D(10000), D(250000)) == D(250000)
    assert borrowing_power(D(300000), D(235000), D("0.80"), D(10000), None) == D(0)  # 5,000 < min
    assert borrowing_power(D(300000), D(230000), D("0.80"), D(10000), None) == D(10000)


def test_equity_of__ltv_and_cltv():
    eq = equity_of(D(300000), [(1, D(180000)), (2, D(20000))])
    assert (eq.equity, eq.ltv, eq.cltv) == (D(100000), D("0.6000"), D("0.6667"))


def _product(**kw):
    base = {
        "id": 1, "kind": "heloc", "rate_type": "fixed", "apr": D("7.000"), "margin": None,
        "rate_floor": None, "rate_cap": None, "max_cltv": D("0.80"),
        "min_amount": D(10000), "max_amount": D(250000),
        "term_months": 120, "requires_owner_occupied": True, "max_existing_liens": 1,
        "min_confidence": 0, "min_equity": D(0), "min_rate_gap_bps": 50,
        "max_ltv_for_pmi": D("0.80"),
    }  # fmt: skip
    base.update(kw)
    return ProductTerms(**base)


def _home(value=D(300000), rate=D("7.5"), balance=D(200000), pmi=D(0), owner=True):
    first = LienState(1, balance, rate, monthly_payment(D(220000), rate, 360), pmi, 300)
    eq = equity_of(value, [(1, balance)])
    return HomeState(value, 80, owner, (first,), eq.lien_balance, eq.equity, eq.ltv, eq.cltv)


def test_product_rate__index_plus_margin__held_between_floor_and_cap():
    p = _product(rate_type="indexed", apr=None, margin=D("-0.5"), rate_floor=D(4), rate_cap=D(18))
    assert product_rate(p, D("7.5")) == D("7.0")
    assert product_rate(p, D("3")) == D(4)
    assert product_rate(p, D("30")) == D(18)


def test_rank_matches__ranks_by_yearly_benefit_and_checks_eligibility():
    heloc = _product(id=1)
    refi = _product(id=2, kind="rate_term_refi", apr=D("5.5"), term_months=360, max_amount=None)
    pmi = _product(id=3, kind="pmi_removal")
    rich = rank_matches(
        _home(pmi=D(120)), [heloc, refi, pmi], prime_rate=D("7.5"), line_score_rate=D("0.10")
    )
    # Refinance saves ~$403/month (x 12 = $4,836) > line $40,000 x 0.10 > PMI $120 x 12.
    assert [m.product_id for m in rich] == [2, 1, 3]
    savings, line, pmi_saved = rich
    assert line.amount == D(40000)
    assert line.score == D(4000)
    assert savings.benefit_kind == "monthly_savings"
    assert savings.benefit > 0
    assert savings.score == savings.benefit * 12
    assert pmi_saved.benefit == D(120)
    # Not owner-occupied: nothing; small rate gap: no refinance.
    assert (
        rank_matches(_home(owner=False), [heloc], prime_rate=D(7), line_score_rate=D("0.1")) == []
    )
    close = _product(id=2, kind="rate_term_refi", apr=D("7.2"))
    assert rank_matches(_home(), [close], prime_rate=D(7), line_score_rate=D("0.1")) == []


def test_pmi_removal__payment_after_is_the_scheduled_principal_and_interest():
    home = _home(value=D(400000), pmi=D(150))  # LTV 50%: PMI can go
    (match,) = rank_matches(
        home, [_product(id=3, kind="pmi_removal")], prime_rate=D(7), line_score_rate=D("0.1")
    )
    # $220,000 at 7.5% over 360 months: $1,538.27 a month of principal and interest (10% more
    # than the published $1,398.43 for $200,000); the scheduled payment holds no PMI, so
    # none is taken off it.
    assert match.monthly_payment == monthly_payment(D(220000), D("7.5"), 360) == D("1538.27")
    assert match.benefit == D(150)


def test_cash_out__rounded_once_never_a_dollar_over_the_formula():
    home = _home(value=D(300000), balance=D("200000.50"))
    refi = _product(id=2, kind="cash_out_refi", apr=D(6), term_months=360, max_amount=None)
    (match,) = rank_matches(home, [refi], prime_rate=D(7), line_score_rate=D("0.1"))
    assert match.amount == D(240000)  # the new loan: 300,000 x 0.80
    assert match.benefit == D(39999)  # cash: 240,000 - 200,000.50 = 39,999.50, rounded down


def test_balance_after__a_payment_below_the_interest__keeps_the_balance():
    # $200,000 owed on a loan whose payment was set for $100,000: $1,000 of interest a
    # month against a $599.55 payment. The schedule pays down, it never compounds the
    # shortfall (which ran to $10^20 and beyond any money field for extreme figures).
    assert balance_after(D(200000), D(6), D("599.55"), 360) == D(200000)
    assert balance_after(D(200000), D(6), D(1000), 12) == D(200000)  # interest only
    huge = D(10_000_000_000)
    assert balance_after(huge, D(100), monthly_payment(D("0.01"), D(100), 600), 599) == huge
    # A payment that covers the interest still pays the loan down.
    assert balance_after(D(200000), D(6), D("1000.01"), 1) == D("199999.99")


def test_pmi_removal_and_refinance__just_above_the_limit__not_offered_for_the_rounded_ratio():
    """$240,012 owed on a $300,000 home is an LTV (and CLTV) of 80.004%: above an 80% limit,
    though it rounds to 80.00%. Neither PMI removal nor a refinance to 80% is offered;
    $240,000 (exactly 80%) is eligible for both."""
    pmi = _product(id=3, kind="pmi_removal")
    refi = _product(id=2, kind="rate_term_refi", apr=D("5.5"), term_months=360, max_amount=None)
    above = _home(balance=D(240012), pmi=D(120))
    assert (above.ltv, above.cltv) == (D("0.8000"), D("0.8000"))
    assert rank_matches(above, [pmi, refi], prime_rate=D(7), line_score_rate=D("0.1")) == []
    at = _home(balance=D(240000), pmi=D(120))
    matched = rank_matches(at, [pmi, refi], prime_rate=D(7), line_score_rate=D("0.1"))
    assert sorted(m.product_id for m in matched) == [2, 3]


def test_pmi_removal__match_has_no_rate():
    """Removing PMI lends nothing: the match carries no rate (the mortgage's note rate is
    not an APR of the offer)."""
    (match,) = rank_matches(
        _home(value=D(400000), pmi=D(150)), [_product(id=3, kind="pmi_removal")],
        prime_rate=D(7), line_score_rate=D("0.1"),
    )  # fmt: skip
    assert match.rate is None


def test_line_lien_limit__paid_off_loan_not_counted_an_open_line_counted():
    """A HELOC for homes with at most one lien: a paid-off first mortgage is no longer a
    lien, an open line is one even with nothing drawn, a line past its term is not."""
    heloc = _product(id=1, max_existing_liens=1)
    payment = monthly_payment(D(50000), D(8), 360)

    def home(*liens):
        balance = sum((lien.balance for lien in liens), D(0))
        eq = equity_of(D(300000), [(lien.position, lien.balance) for lien in liens])
        return HomeState(D(300000), 80, True, liens, balance, eq.equity, eq.ltv, eq.cltv)

    paid_off = LienState(1, D(0), D("7.5"), payment, D(0), 12, "first_mortgage")
    second = LienState(2, D(50000), D(8), payment, D(0), 300, "second_mortgage")
    open_line = LienState(3, D(0), D(9), D(0), D(0), 60, "heloc")
    ended_line = LienState(3, D(0), D(9), D(0), D(0), 0, "heloc")
    (match,) = rank_matches(home(paid_off, second), [heloc], prime_rate=D(7), line_score_rate=1)
    assert match.amount == D(190000)  # $300,000 x 0.80 - $50,000
    for third, offered in ((ended_line, True), (open_line, False)):
        matches = rank_matches(
            home(paid_off, second, third), [heloc], prime_rate=D(7), line_score_rate=1
        )
        assert bool(matches) is offered, third
