"""An environment's home settings: provider order, display filters, enrollment, rates."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from homes.models.money import rate_field, ratio_field
from homes.models.valuations import Provider
from institutions.models import TenantModel


def default_provider_order() -> list[str]:
    return [Provider.COMPARABLE, Provider.VENDOR]


class HomeSettings(TenantModel):
    """One per environment (promoted by release). Display filters decide whether a figure is
    shown to the member, never what it is."""

    class Enrollment(models.TextChoices):
        AUTO = "auto", "Auto-enroll"
        OPT_IN = "opt_in", "Opt-in (member confirms name and address)"

    provider_order = models.JSONField(
        default=default_provider_order,
        help_text='Providers tried in order, e.g. ["comparable", "vendor", "mock"].',
    )
    fsd_threshold = models.DecimalField(
        "FSD threshold",
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.2000"),
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(1))],
        help_text="A provider whose FSD is above this gives no answer; the next is tried.",
    )
    min_confidence = models.PositiveSmallIntegerField(
        "minimum confidence shown",
        default=50,
        validators=[MaxValueValidator(100)],
        help_text="Values with a lower confidence (percent) are not shown to members.",
    )
    owner_occupied_only = models.BooleanField(default=True)
    min_years_owned = models.PositiveSmallIntegerField(default=0)
    year_built_min = models.PositiveSmallIntegerField(null=True, blank=True)
    year_built_max = models.PositiveSmallIntegerField(null=True, blank=True)
    enrollment_mode = models.CharField(
        max_length=10, choices=Enrollment.choices, default=Enrollment.AUTO
    )
    no_home_message = models.TextField(
        '"I don\'t own a home" message',
        default="Thanks for letting us know. When you buy a home, we'll be here to help.",
    )
    default_max_cltv = ratio_field(
        "max CLTV for borrowing power",
        default=Decimal("0.8000"),
        help_text="Used for the dashboard's borrowing power when no line product is offered.",
    )
    prime_rate = rate_field(
        "index (prime) rate", default=Decimal("7.500"), help_text="For index + margin products."
    )
    market_rate_30y = rate_field(
        "market 30-year rate", default=Decimal("6.750"), help_text="For the refinance alert."
    )
    line_score_rate = ratio_field(
        "yearly value of available credit",
        default=Decimal("0.1000"),
        help_text="Ranks a line against savings: a $10,000 line scores as $1,000 a year.",
    )

    class Meta:
        verbose_name = "home settings"
        verbose_name_plural = "home settings"
        constraints = [
            models.UniqueConstraint(fields=["environment"], name="homesettings_one_per_env"),
        ]

    def __str__(self) -> str:
        return "Home settings"

    def clean(self):
        errors = {}
        order = self.provider_order
        if not isinstance(order, list) or not order:
            errors["provider_order"] = "List at least one provider."
        else:
            unknown = [p for p in order if p not in Provider.values]
            if unknown:
                errors["provider_order"] = (
                    f"Unknown provider(s) {', '.join(map(str, unknown))}; "
                    f"use {', '.join(Provider.values)}."
                )
            elif len(set(order)) != len(order):
                errors["provider_order"] = "List each provider once."
            elif (
                Provider.MOCK in order
                and self.environment_id is not None
                and self.environment.is_production
            ):
                errors["provider_order"] = (
                    "The mock provider is for staging; production values homes with the "
                    "comparable-sales estimator and vendor values only."
                )
        if (
            self.year_built_min is not None
            and self.year_built_max is not None
            and self.year_built_min > self.year_built_max
        ):
            errors["year_built_min"] = (
                f"Minimum year built ({self.year_built_min}) is after the maximum "
                f"({self.year_built_max})."
            )
        if self.default_max_cltv is not None and self.default_max_cltv > Decimal("1.5"):
            errors["default_max_cltv"] = "Write the CLTV as a fraction (0.80 for 80%)."
        if errors:
            raise ValidationError(errors)
