"""Money, rate and ratio fields (rounding rules: homes.finance.rounding)."""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from homes.finance.rounding import ZERO


def money_field(verbose_name=None, *, null=False, blank=False, nonnegative=True, **kwargs):
    validators = [MinValueValidator(ZERO, "Must not be negative.")] if nonnegative else []
    return models.DecimalField(
        verbose_name,
        max_digits=14,
        decimal_places=2,
        null=null,
        blank=blank,
        validators=validators,
        **kwargs,
    )


def rate_field(verbose_name=None, *, null=False, blank=False, **kwargs):
    """An interest rate in percent: 0 to 100."""
    return models.DecimalField(
        verbose_name,
        max_digits=6,
        decimal_places=3,
        null=null,
        blank=blank,
        validators=[
            MinValueValidator(ZERO, "A rate cannot be negative."),
            MaxValueValidator(Decimal(100), "A rate cannot be over 100%%."),
        ],
        **kwargs,
    )


#: Digits of a ratio computed from a home's figures: every quotient of two amounts a money
#: field holds (at most 999,999,999,999.99 over at least 0.01), to 4 places.
COMPUTED_RATIO_DIGITS = 18


def ratio_field(verbose_name=None, *, null=False, blank=False, editable=True, **kwargs):
    """A fraction such as a CLTV (0.8000 = 80%).

    A ratio staff set (a max CLTV, the line score rate) stays under 100: amounts are
    multiplied by it. One computed from a home's figures (editable=False: its LTV and CLTV)
    is whatever they give, and is stored and read as it is: liens far above a mistyped
    value (a $5,000 value under a $600,000 mortgage makes a CLTV of 120) are the
    institution's to correct, not a reason to lose the import or to fail every read of
    the member.
    """
    return models.DecimalField(
        verbose_name,
        max_digits=6 if editable else COMPUTED_RATIO_DIGITS,
        decimal_places=4,
        null=null,
        blank=blank,
        editable=editable,
        validators=[MinValueValidator(ZERO, "Must not be negative.")],
        **kwargs,
    )
