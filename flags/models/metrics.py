"""Request metrics per environment, minute and cohort; oracle rules over the metrics."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from institutions.models import TenantModel

#: Latency histogram upper bounds in milliseconds; the last bucket is everything slower.
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500)
BUCKET_FIELDS = (*(f"le_{b}" for b in LATENCY_BOUNDS_MS), "le_inf")


class RequestMetric(TenantModel):
    class Cohort(models.TextChoices):
        TEST = "test", "Test members"
        MEMBER = "member", "Members (not test)"
        ANONYMOUS = "anonymous", "Not signed in"

    minute = models.DateTimeField()
    cohort = models.CharField(max_length=10, choices=Cohort.choices)
    count = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0, help_text="Responses with a 5xx status.")
    latency_ms_sum = models.FloatField(default=0)
    le_10 = models.PositiveIntegerField(default=0)
    le_25 = models.PositiveIntegerField(default=0)
    le_50 = models.PositiveIntegerField(default=0)
    le_100 = models.PositiveIntegerField(default=0)
    le_250 = models.PositiveIntegerField(default=0)
    le_500 = models.PositiveIntegerField(default=0)
    le_1000 = models.PositiveIntegerField(default=0)
    le_2500 = models.PositiveIntegerField(default=0)
    le_inf = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "minute", "cohort"], name="requestmetric_minute"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.cohort}: {self.count}"


class OracleRule(TenantModel):
    """One judgement: a metric, its comparator and thresholds, a minimum sample, a window.

    "lower" is better (5xx rate, latency): pass when value < pass_threshold, fail when
    value >= fail_threshold, inconclusive in between. "higher" is better (a selection rate):
    pass when value > pass_threshold, fail when value <= fail_threshold. Fewer observations
    than min_sample is inconclusive, whatever the value.
    """

    class Comparator(models.TextChoices):
        LOWER = "lower", "Lower is better"
        HIGHER = "higher", "Higher is better"

    class Cohort(models.TextChoices):
        ALL = "all", "All"
        TEST = "test", "Test members"
        NON_TEST = "non_test", "Not test members"

    group = models.CharField(
        max_length=80, help_text='Who uses it: "release", "rollout", "test-plan:<name>".'
    )
    name = models.CharField(max_length=80)
    metric = models.CharField(max_length=100)
    comparator = models.CharField(max_length=8, choices=Comparator.choices)
    pass_threshold = models.FloatField()
    fail_threshold = models.FloatField()
    min_sample = models.PositiveIntegerField(default=100)
    window_minutes = models.PositiveIntegerField(
        default=0, help_text="Judge only the last N minutes of the period (0: all of it)."
    )
    cohort = models.CharField(max_length=10, choices=Cohort.choices, default=Cohort.ALL)

    class Meta:
        ordering = ["group", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "group", "name"], name="oraclerule_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group}/{self.name}"

    def clean(self):
        from institutions.metrics import metric_names, thresholds_out_of_range

        errors = {}
        if self.metric and self.metric not in metric_names():
            errors["metric"] = f"Unknown metric {self.metric!r}."
        for field in ("pass_threshold", "fail_threshold"):
            value = getattr(self, field)
            if self.metric and value is not None:
                # A threshold the metric never reaches makes a rule that never fires (or
                # always does): 5 meant as 5% for a share of 0 to 1.
                problems = thresholds_out_of_range(self.metric, {field: value})
                if problems:
                    errors[field] = problems[0] + "."
        if self.comparator == self.Comparator.LOWER and self.pass_threshold > self.fail_threshold:
            errors["fail_threshold"] = "Lower is better: the fail threshold must be >= pass."
        if self.comparator == self.Comparator.HIGHER and self.pass_threshold < self.fail_threshold:
            errors["fail_threshold"] = "Higher is better: the fail threshold must be <= pass."
        if errors:
            raise ValidationError(errors)
