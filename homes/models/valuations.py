"""Valuations (history kept), vendor values imported for the vendor provider, refresh runs."""

from django.core.validators import MaxValueValidator
from django.db import models

from homes.models.money import money_field
from homes.models.properties import Property
from institutions.models import TenantModel


class Provider(models.TextChoices):
    COMPARABLE = "comparable", "Comparable sales (built-in)"
    VENDOR = "vendor", "Vendor values"
    MOCK = "mock", "Mock (deterministic, for staging)"


class Valuation(TenantModel):
    """One provider's value of a property on a date; older rows are the value history."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="valuations")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    value = money_field()
    low = money_field()
    high = money_field()
    confidence = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    fsd = models.DecimalField("FSD", max_digits=6, decimal_places=4)
    as_of = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["property_id", "-as_of", "-id"]
        get_latest_by = "as_of"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "property", "provider", "as_of"],
                name="valuation_one_per_provider_day",
            ),
            models.CheckConstraint(
                condition=models.Q(low__lte=models.F("value"), high__gte=models.F("value")),
                name="valuation_range_holds_value",
            ),
        ]
        indexes = [models.Index(fields=["property", "as_of"], name="valuation_history")]

    def __str__(self) -> str:
        return f"${self.value:,.0f} ({self.get_provider_display()}, {self.as_of})"


class VendorValue(TenantModel):
    """A value a vendor (AVM or appraisal) gave, imported by CSV or API; read by the provider."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="vendor_values")
    vendor = models.CharField(max_length=60, default="vendor")
    value = money_field()
    low = money_field(null=True, blank=True)
    high = money_field(null=True, blank=True)
    fsd = models.DecimalField("FSD", max_digits=6, decimal_places=4, null=True, blank=True)
    as_of = models.DateField()
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["property_id", "-as_of"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "property", "vendor", "as_of"],
                name="vendorvalue_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.vendor}: ${self.value:,.0f} ({self.as_of})"


class RefreshRun(TenantModel):
    """One revaluation of the properties of an environment (every one, or those waiting for
    a valuation); resumable from `cursor`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Scope(models.TextChoices):
        ALL = "all", "Every property"
        WAITING = "waiting", "Properties waiting for a valuation"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    scope = models.CharField(
        max_length=10,
        choices=Scope.choices,
        default=Scope.ALL,
        help_text="Waiting: only the properties marked for a valuation (e.g. by a vendor "
        "upload) within the run's chunks.",
    )
    as_of = models.DateField()
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    valued = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(
        default=0, help_text="Every property up to this id is done (the lowest chunk cursor)."
    )
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=["all", "waiting"]), name="refreshrun_scope_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Refresh {self.pk} ({self.get_status_display()}, {self.progress_text})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)

    @property
    def progress_text(self) -> str:
        return f"{self.processed:,}/{self.total:,} ({self.percent}%)"


class RefreshChunk(TenantModel):
    """One id range of a refresh run: workers process chunks in parallel, each resumable
    from its own cursor (properties with after_id < id <= last_id)."""

    run = models.ForeignKey(RefreshRun, on_delete=models.CASCADE, related_name="chunks")
    after_id = models.BigIntegerField(help_text="The chunk starts after this property id.")
    last_id = models.BigIntegerField(help_text="The chunk ends with this property id.")
    cursor = models.BigIntegerField(help_text="Highest property id of the chunk done.")
    status = models.CharField(
        max_length=10, choices=RefreshRun.Status.choices, default=RefreshRun.Status.PENDING
    )
    processed = models.PositiveIntegerField(default=0)
    valued = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "after_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "run", "after_id"], name="refreshchunk_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Properties {self.after_id + 1} to {self.last_id} ({self.get_status_display()})"
