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


def ratio_field(verbose_name=None, *, null=False, blank=False, **kwargs):
    """A fraction such as a CLTV (0.8000 = 80%)."""
    return models.DecimalField(
        verbose_name,
        max_digits=6,
        decimal_places=4,
        null=null,
        blank=blank,
        validators=[MinValueValidator(ZERO, "Must not be negative.")],
        **kwargs,
    )
