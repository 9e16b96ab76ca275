"""Money and rate fields, and the rounding rules every homes computation follows.

Rounding (documented once, used everywhere):
- Money is Decimal, stored to the cent. Amortization rounds each payment's interest and the
  payment itself to the cent with ROUND_HALF_UP, as lenders' schedules do.
- Valuations are whole dollars (the built-in estimator rounds to the nearest $1,000 with
  ROUND_HALF_EVEN; vendor values are kept as given, to the cent).
- Ratios (LTV, CLTV, max CLTV) are fractions with 4 decimal places, ROUND_HALF_UP.
- Borrowing power and offer amounts are rounded DOWN to the whole dollar: an offer never
  promises a cent more than the formula gives.
- Rates are percentages (6.125 = 6.125%) with 3 decimal places.
"""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
DOLLAR = Decimal("1")
RATIO = Decimal("0.0001")
ZERO = Decimal("0")


def cents(amount) -> Decimal:
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def whole_dollars_down(amount) -> Decimal:
    return Decimal(amount).quantize(DOLLAR, rounding=ROUND_DOWN)


def ratio(amount) -> Decimal:
    return Decimal(amount).quantize(RATIO, rounding=ROUND_HALF_UP)
