"""A member's home, its liens, and the recorded sales used as comparables."""

from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from homes.models.members import Member
from homes.models.money import money_field, rate_field, ratio_field
from institutions.models import TenantModel


def _today(row: TenantModel) -> date:
    """Today where the row's institution is: a date of its tomorrow has not happened yet
    there, even when it is already today in UTC."""
    if row.environment_id is None:  # refused anyway: a row belongs to an environment
        return timezone.localdate()
    return row.environment.institution.today()


def _not_future(value: date | None, field: str, today: date) -> dict:
    if value and value > today:
        return {field: "Cannot be in the future."}
    return {}


class Property(TenantModel):
    """A home, with the figures last computed from its valuation and liens (never by pages)."""

    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="properties"
    )
    external_id = models.CharField(max_length=100, blank=True)
    street = models.CharField(max_length=200)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    latitude = models.FloatField(
        validators=[MinValueValidator(-90), MaxValueValidator(90)], null=True, blank=True
    )
    longitude = models.FloatField(
        validators=[MinValueValidator(-180), MaxValueValidator(180)], null=True, blank=True
    )
    bedrooms = models.PositiveSmallIntegerField(null=True, blank=True)
    bathrooms = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0, "Must not be negative.")],
    )
    living_sqft = models.PositiveIntegerField(
        "living area (sq ft)",
        null=True,
        blank=True,
        validators=[MinValueValidator(100, "A home has at least 100 sq ft.")],
    )
    lot_sqft = models.PositiveIntegerField("lot (sq ft)", null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1600)]
    )
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    condition = models.PositiveSmallIntegerField(null=True, blank=True)
    owner_occupied = models.BooleanField(default=True)
    purchase_date = models.DateField(null=True, blank=True)
    purchase_price = money_field(null=True, blank=True)

    # Computed by homes.services.recompute (revaluation, lien change): read, never written
    # by views.
    value = money_field(null=True, blank=True, editable=False)
    value_low = money_field(null=True, blank=True, editable=False)
    value_high = money_field(null=True, blank=True, editable=False)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    valued_on = models.DateField(null=True, blank=True, editable=False)
    lien_balance = money_field(null=True, blank=True, editable=False)
    equity = money_field(null=True, blank=True, editable=False, nonnegative=False)
    ltv = ratio_field("LTV", null=True, blank=True, editable=False)
    cltv = ratio_field("CLTV", null=True, blank=True, editable=False)
    borrowing_power = money_field(null=True, blank=True, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Work a sync (or a large vendor upload) asked for, written with its data (a queued task
    # can be lost): cleared by the valuation or recompute that does it; homes.equity_tick
    # does what is left waiting.
    valuation_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    recompute_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "properties"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "external_id"],
                condition=~models.Q(external_id=""),
                name="property_external_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(purchase_price__isnull=True) | models.Q(purchase_price__gte=0),
                name="property_purchase_price_nonnegative",
            ),
        ]
        # Batch jobs walk an environment's homes in id order (keyset pages, id-range chunks).
        indexes = [models.Index(fields=["environment", "id"], name="property_env_id")]

    def __str__(self) -> str:
        return self.address

    @property
    def address(self) -> str:
        tail = " ".join(p for p in [self.state, self.postal_code] if p)
        return ", ".join(p for p in [self.street, self.city, tail] if p)

    def clean(self):
        today = _today(self)
        errors = _not_future(self.purchase_date, "purchase_date", today)
        if self.year_built and self.year_built > today.year + 1:
            errors["year_built"] = "Cannot be in the future."
        if errors:
            raise ValidationError(errors)


class Lien(TenantModel):
    """A mortgage or line on a property; `balance` was true on `balance_as_of`."""

    class Kind(models.TextChoices):
        FIRST_MORTGAGE = "first_mortgage", "First mortgage"
        SECOND_MORTGAGE = "second_mortgage", "Second mortgage"
        HELOC = "heloc", "HELOC"

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="liens")
    position = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(9)]
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FIRST_MORTGAGE)
    original_amount = money_field()
    rate = rate_field(help_text="Interest rate in percent, e.g. 6.125.")
    term_months = models.PositiveSmallIntegerField(
        default=360, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    origination_date = models.DateField()
    balance = money_field()
    balance_as_of = models.DateField()
    pmi_monthly = money_field("PMI per month", default=0)

    class Meta:
        ordering = ["property_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "property", "position"], name="lien_position_unique"
            ),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="lien_balance_gte_0"),
            models.CheckConstraint(
                condition=models.Q(rate__gte=0, rate__lte=100), name="lien_rate_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (position {self.position})"

    def clean(self):
        today = _today(self)
        errors = _not_future(self.origination_date, "origination_date", today)
        errors |= _not_future(self.balance_as_of, "balance_as_of", today)
        if (
            self.origination_date
            and self.balance_as_of
            and self.balance_as_of < self.origination_date
        ):
            errors["balance_as_of"] = "Cannot be before the origination date."
        if errors:
            raise ValidationError(errors)


class Sale(TenantModel):
    """A recorded sale: the comparables of the built-in estimator."""

    external_id = models.CharField(max_length=100, blank=True)
    address = models.CharField(max_length=200, blank=True)
    price = money_field()
    sale_date = models.DateField(null=True, blank=True)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    living_sqft = models.PositiveIntegerField(validators=[MinValueValidator(100)])
    lot_sqft = models.PositiveIntegerField(null=True, blank=True)
    bedrooms = models.PositiveSmallIntegerField(null=True, blank=True)
    bathrooms = models.FloatField(null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(null=True, blank=True)
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    condition = models.PositiveSmallIntegerField(null=True, blank=True)
    view = models.PositiveSmallIntegerField(null=True, blank=True)
    waterfront = models.BooleanField(null=True, blank=True)
    floors = models.FloatField(null=True, blank=True)
    yr_renovated = models.PositiveSmallIntegerField(null=True, blank=True)
    sqft_basement = models.PositiveIntegerField(null=True, blank=True)
    sqft_living15 = models.PositiveIntegerField(null=True, blank=True)
    sqft_lot15 = models.PositiveIntegerField(null=True, blank=True)
    zipcode = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "external_id"],
                condition=~models.Q(external_id=""),
                name="sale_external_id_unique",
            ),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="sale_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.address or self.external_id or self.pk}: ${self.price:,.0f}"
