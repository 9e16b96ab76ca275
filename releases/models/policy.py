from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.db import models

from flags.oracle import RuleSpec
from institutions.models import Institution

SIGNING_ROLES = ("it", "marketing", "lending", "admin")
DEFAULT_REQUIRED_ROLES = ["it", "marketing", "lending"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
#: A watch rule's comparator as stored ("lt"/"gt" are older spellings) -> the oracle's.
WATCH_COMPARATORS = {"lt": "lower", "lower": "lower", "gt": "higher", "higher": "higher"}
#: The keys releases.watch.rules_from_policy reads; any other would be silently ignored.
WATCH_RULE_KEYS = (
    "metric",
    "comparator",
    "pass_threshold",
    "fail_threshold",
    "min_sample",
    "cohort",
    "name",
)
#: The cohort a watch rule judges when it names none: members and visitors, not test members.
#: Test members try unreleased variants in production; their errors must not fail the watch
#: and roll production back for everyone (a rule may still say "all" or "test").
DEFAULT_WATCH_COHORT = "non_test"
#: A watch rule's min_sample when it names none: the oracle's own default (RuleSpec's).
DEFAULT_WATCH_MIN_SAMPLE: int = RuleSpec.min_sample


def default_required_roles() -> list[str]:
    return list(DEFAULT_REQUIRED_ROLES)


def default_watch_rules() -> list[dict]:
    """The watch defaults: 5xx rate, delivery failure rate and p95 latency, of members."""
    return [
        {
            "metric": "http_5xx_rate",
            "comparator": "lower",
            "pass_threshold": 0.01,
            "fail_threshold": 0.05,
            "min_sample": 100,
            "cohort": DEFAULT_WATCH_COHORT,
        },
        {
            "metric": "delivery_failure_rate",
            "comparator": "lower",
            "pass_threshold": 0.02,
            "fail_threshold": 0.10,
            "min_sample": 50,
            "cohort": DEFAULT_WATCH_COHORT,
        },
        {
            "metric": "http_p95_latency_ms",
            "comparator": "lower",
            "pass_threshold": 800,
            "fail_threshold": 2000,
            "min_sample": 100,
            "cohort": DEFAULT_WATCH_COHORT,
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
    # On unless the institution turns it off: a deploy the oracle fails should not wait for
    # someone to read an alert while members see the failure.
    auto_rollback = models.BooleanField(
        default=True, help_text="Roll back by itself when the oracle fails a deploy."
    )
    watch_rules = models.JSONField(
        default=default_watch_rules,
        help_text=(
            "Oracle rules judged during the watch: metric, pass_threshold and fail_threshold; "
            'optionally comparator ("lower" or "higher"), min_sample (default 100), cohort and '
            "name. A share is 0-1 (0.05 for 5%). Without a cohort a rule judges members and "
            'visitors, not test members ("non_test"); give "all" or "test" to judge those.'
        ),
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
        problems = watch_rules_problems(self.watch_rules)
        if problems:
            raise ValidationError({"watch_rules": problems})


def _is_number(value) -> bool:
    """A finite number the watch can turn into a float (not true/false, NaN or 1e400)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _watch_rule_problems(rule: dict) -> list[str]:
    """What in one watch rule the watch could not read or judge, field by field."""
    from flags.models import OracleRule
    from institutions.metrics import metric_names, thresholds_out_of_range

    problems = []
    unknown = [str(key) for key in rule if key not in WATCH_RULE_KEYS]
    if unknown:
        problems.append(
            f"unknown fields {', '.join(unknown)} (known: {', '.join(WATCH_RULE_KEYS)})"
        )
    metric = rule.get("metric")
    if not isinstance(metric, str) or not metric:
        problems.append("metric is required")
    elif metric not in metric_names():
        problems.append(f"metric {metric!r} is unknown (known: {', '.join(metric_names())})")
    comparator = rule.get("comparator", "lower")
    if not isinstance(comparator, str) or comparator not in WATCH_COMPARATORS:
        problems.append(
            f"comparator {comparator!r} is unknown (use one of: {', '.join(WATCH_COMPARATORS)})"
        )
    thresholds = {}
    for key in ("pass_threshold", "fail_threshold"):
        if key not in rule:
            problems.append(f"{key} is required")
        elif not _is_number(rule[key]):
            problems.append(f"{key} must be a number (got {rule[key]!r})")
        else:
            thresholds[key] = rule[key]
    if isinstance(metric, str) and metric in metric_names():
        problems.extend(thresholds_out_of_range(metric, thresholds))
    if len(thresholds) == 2 and comparator in WATCH_COMPARATORS:
        passing, failing = thresholds["pass_threshold"], thresholds["fail_threshold"]
        # As OracleRule.clean: the inconclusive band between them must not be inverted.
        if WATCH_COMPARATORS[comparator] == "lower" and passing > failing:
            problems.append("fail_threshold must be >= pass_threshold (lower is better)")
        if WATCH_COMPARATORS[comparator] == "higher" and passing < failing:
            problems.append("fail_threshold must be <= pass_threshold (higher is better)")
    min_sample = rule.get("min_sample", DEFAULT_WATCH_MIN_SAMPLE)
    if not isinstance(min_sample, int) or isinstance(min_sample, bool) or min_sample < 0:
        problems.append(f"min_sample must be a whole number of 0 or more (got {min_sample!r})")
    cohort = rule.get("cohort", DEFAULT_WATCH_COHORT)
    if cohort not in OracleRule.Cohort.values:
        problems.append(
            f"cohort {cohort!r} is unknown (use one of: {', '.join(OracleRule.Cohort.values)})"
        )
    if "name" in rule and (not isinstance(rule["name"], str) or not rule["name"]):
        problems.append("name must be non-empty text")
    return problems


def watch_rules_problems(rules) -> list[str]:
    """Why the release watch could not use these rules, one message per bad rule ([]: fine)."""
    example = '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, "fail_threshold": 0.05}]'
    if not isinstance(rules, list) or not rules:
        return [f"Give a list of rules, e.g. {example}."]
    messages = []
    for i, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            messages.append(f"Rule {i}: give an object with a metric and thresholds.")
            continue
        problems = _watch_rule_problems(rule)
        if problems:
            label = rule.get("name") or rule.get("metric")
            named = f"Rule {i} ({label})" if isinstance(label, str) and label else f"Rule {i}"
            messages.append(f"{named}: {'; '.join(problems)}.")
    return messages


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
