"""Offer products (configuration), the stored matches, and each member's saved/selected state."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from homes.models.members import Member
from homes.models.money import money_field, rate_field, ratio_field
from homes.models.properties import Property
from institutions.models import TenantModel


class OfferProduct(TenantModel):
    """A loan product the institution offers from home equity (promoted by release)."""

    class Kind(models.TextChoices):
        HELOC = "heloc", "HELOC"
        HOME_EQUITY_LOAN = "home_equity_loan", "Home-equity loan"
        CASH_OUT_REFINANCE = "cash_out_refi", "Cash-out refinance"
        RATE_TERM_REFINANCE = "rate_term_refi", "Rate-and-term refinance"
        PMI_REMOVAL = "pmi_removal", "PMI removal"

    # Kinds that open a line of credit: the member's borrowing power is the best of them.
    LINE_KINDS = (Kind.HELOC, Kind.HOME_EQUITY_LOAN)

    class RateType(models.TextChoices):
        FIXED = "fixed", "Fixed APR"
        INDEXED = "indexed", "Index + margin"

    name = models.CharField(max_length=120, help_text="Internal name; unique per environment.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(default=True)
    title = models.CharField(max_length=120, help_text="Shown to members.")
    summary = models.TextField(blank=True, help_text="Advertising copy shown to members.")
    rate_type = models.CharField(max_length=10, choices=RateType.choices, default=RateType.FIXED)
    apr = rate_field("APR", null=True, blank=True, help_text="Fixed APR in percent.")
    margin = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(-20)), MaxValueValidator(Decimal(20))],
        help_text="Added to the index (prime) rate; negative for 'prime minus'.",
    )
    rate_floor = rate_field(null=True, blank=True)
    rate_cap = rate_field(null=True, blank=True)
    max_cltv = ratio_field("max CLTV", default=Decimal("0.8000"))
    min_amount = money_field(default=0)
    max_amount = money_field(null=True, blank=True)
    term_months = models.PositiveSmallIntegerField(
        default=360, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    # Eligibility rules.
    requires_owner_occupied = models.BooleanField(default=True)
    max_existing_liens = models.PositiveSmallIntegerField(
        default=1, help_text="Eligible only with at most this many liens on the home."
    )
    min_confidence = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)]
    )
    min_equity = money_field(default=0)
    min_rate_gap_bps = models.PositiveSmallIntegerField(
        "refinance rate gap (bps)",
        default=50,
        help_text="Refinance: the member's rate must exceed ours by this many basis points.",
    )
    max_ltv_for_pmi = ratio_field("PMI removal max LTV", default=Decimal("0.8000"))
    disclosures = models.TextField(blank=True)
    apply_url = models.URLField(blank=True)
    book_appointment = models.BooleanField(
        default=False, help_text="Offer to book an appointment (when appointments exist)."
    )
    display_order = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="offerproduct_name"),
            models.CheckConstraint(
                condition=models.Q(max_amount__isnull=True)
                | models.Q(max_amount__gte=models.F("min_amount")),
                name="offerproduct_min_le_max",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_line(self) -> bool:
        return self.kind in self.LINE_KINDS

    def clean(self):
        from homes.finance.disclosures import missing_disclosures

        errors: dict[str, list[str]] = {}

        def add(field, message):
            errors.setdefault(field, []).append(message)

        if (
            self.max_amount is not None
            and self.min_amount is not None
            and self.min_amount > self.max_amount
        ):
            add(
                "min_amount",
                f"Minimum amount (${self.min_amount:,.2f}) is more than the maximum "
                f"(${self.max_amount:,.2f}).",
            )
        if self.rate_type == self.RateType.FIXED and self.apr is None:
            add("apr", "A fixed-rate product needs its APR.")
        if self.rate_type == self.RateType.INDEXED and self.margin is None:
            add("margin", "An index + margin product needs its margin.")
        if (
            self.rate_floor is not None
            and self.rate_cap is not None
            and self.rate_floor > self.rate_cap
        ):
            add(
                "rate_floor",
                f"Rate floor ({self.rate_floor}%) is above the cap ({self.rate_cap}%).",
            )
        if self.max_cltv is not None and self.max_cltv > Decimal("1.5"):
            add("max_cltv", "Write the CLTV as a fraction (0.80 for 80%).")
        missing = missing_disclosures(self)
        if missing:
            add("disclosures", missing)
        if errors:
            raise ValidationError(errors)


class OfferMatch(TenantModel):
    """An eligible offer for a member's home, ranked by benefit (stored; pages only read it)."""

    class Benefit(models.TextChoices):
        MONTHLY_SAVINGS = "monthly_savings", "Monthly savings"
        AVAILABLE_LINE = "available_line", "Available to borrow"
        PMI_SAVED = "pmi_saved", "PMI saved per month"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="offer_matches")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="offer_matches")
    product = models.ForeignKey(OfferProduct, on_delete=models.CASCADE, related_name="matches")
    rank = models.PositiveSmallIntegerField()
    benefit_kind = models.CharField(max_length=20, choices=Benefit.choices)
    benefit = money_field()
    score = money_field(help_text="Yearly dollar value used to rank offers of different kinds.")
    amount = money_field(null=True, blank=True)
    rate = rate_field(null=True, blank=True)
    monthly_payment = money_field(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["member_id", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "property", "product"], name="offermatch_unique"
            )
        ]
        indexes = [models.Index(fields=["member", "rank"], name="offermatch_member_rank")]

    def __str__(self) -> str:
        return f"#{self.rank} {self.product} for {self.property}"


class MemberOffer(TenantModel):
    """What a member did with an offer: viewed, saved, selected (lending staff see it)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="offer_states")
    product = models.ForeignKey(OfferProduct, on_delete=models.CASCADE, related_name="states")
    first_viewed_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    saved_at = models.DateTimeField(null=True, blank=True)
    selected_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "member", "product"], name="memberoffer_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} · {self.product}"
