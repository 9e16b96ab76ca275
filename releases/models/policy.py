from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from institutions.models import Institution

SIGNING_ROLES = ("it", "marketing", "lending", "admin")
DEFAULT_REQUIRED_ROLES = ["it", "marketing", "lending"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def default_required_roles() -> list[str]:
    return list(DEFAULT_REQUIRED_ROLES)


def default_watch_rules() -> list[dict]:
    """The watch defaults: 5xx rate, delivery failure rate and p95 latency."""
    return [
        {
            "metric": "http_5xx_rate",
            "comparator": "lower",
            "pass_threshold": 0.01,
            "fail_threshold": 0.05,
            "min_sample": 100,
            "cohort": "all",
        },
        {
            "metric": "delivery_failure_rate",
            "comparator": "lower",
            "pass_threshold": 0.02,
            "fail_threshold": 0.10,
            "min_sample": 50,
            "cohort": "all",
        },
        {
            "metric": "http_p95_latency_ms",
            "comparator": "lower",
            "pass_threshold": 800,
            "fail_threshold": 2000,
            "min_sample": 100,
            "cohort": "all",
        },
    ]


class ReleasePolicy(models.Model):
    """How one institution promotes staging to production: signers, windows, watch."""

    institution = models.OneToOneField(
        Institution, on_delete=models.CASCADE, related_name="release_policy"
    )
    required_roles = models.JSONField(
        default=default_required_roles,
        help_text="Roles that must each approve a release (e.g. it, marketing, lending).",
    )
    watch_minutes = models.PositiveIntegerField(
        default=60, help_text="How long the oracle watches production after a deploy."
    )
    auto_rollback = models.BooleanField(
        default=False, help_text="Roll back by itself when the oracle fails a deploy."
    )
    watch_rules = models.JSONField(
        default=default_watch_rules,
        help_text="Oracle rules judged during the watch (metric, thresholds, minimum sample).",
    )

    class Meta:
        verbose_name_plural = "release policies"

    def __str__(self) -> str:
        return f"Release policy · {self.institution}"

    def clean(self) -> None:
        roles = self.required_roles
        if not isinstance(roles, list) or not roles:
            raise ValidationError({"required_roles": "Name at least one role that must sign."})
        unknown = [r for r in roles if r not in SIGNING_ROLES]
        if unknown:
            raise ValidationError(
                {"required_roles": f"Unknown roles: {', '.join(map(str, unknown))}."}
            )
        if len(set(roles)) != len(roles):
            raise ValidationError({"required_roles": "Each role may be listed once."})


def _valid_weekdays(value) -> None:
    if not isinstance(value, list) or not value or any(d not in range(7) for d in value):
        raise ValidationError("Give weekdays as numbers 0 (Monday) to 6 (Sunday).")


class DeployWindow(models.Model):
    """An off-peak window that opens on the given weekdays, in the institution's time zone.

    An end at or before the start means the window crosses midnight (22:00-05:00 opened on
    Tuesday closes on Wednesday at 05:00).
    """

    policy = models.ForeignKey(ReleasePolicy, on_delete=models.CASCADE, related_name="windows")
    weekdays = models.JSONField(
        validators=[_valid_weekdays], help_text="Days it opens: 0 = Monday … 6 = Sunday."
    )
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["policy", "start", "id"]

    def __str__(self) -> str:
        days = ", ".join(WEEKDAYS[d] for d in sorted(self.weekdays or []))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


class FreezePeriod(models.Model):
    """Days (in the institution's time zone) on which nothing deploys."""

    policy = models.ForeignKey(ReleasePolicy, on_delete=models.CASCADE, related_name="freezes")
    first_day = models.DateField()
    last_day = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["policy", "first_day"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(last_day__gte=models.F("first_day")),
                name="freeze_period_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"Freeze {self.first_day}-{self.last_day} {self.reason}".strip()
