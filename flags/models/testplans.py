"""Test plans: request templates, a mutation plan and oracle rules; and their runs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from flags.mutation import PARTS
from institutions.models import TenantModel

MUTATION_SHAPE = (
    'Give {"max_attacks": 3, "parts": {"query": {"attack_set": "values", "probability": 0.5, '
    '"max_attacks": 2}, ...}}, or {}.'
)
PART_KEYS = {
    "attack_set": "name",
    "max_attacks": "count",
    "probability": "probability",
    # headers only: a header name from an attack set, added with its own probability
    "key_attack_set": "name",
    "key_probability": "probability",
}


def _kind_problem(value, kind: str) -> str:
    """Why value is not of the kind ("count", "probability", "name"), or ""."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "count" and not (isinstance(value, int) and is_number and value >= 0):
        return "a whole number, 0 or more"
    if kind == "probability" and not (is_number and 0 <= value <= 1):
        return "a number from 0 to 1"
    if kind == "name" and not isinstance(value, str):
        return "the name of an attack set"
    return ""


def mutation_problem(mutation) -> str:
    """Why a mutation plan cannot be read by flags.mutation.mutate(), or "" when it can."""
    if not isinstance(mutation, dict):
        return MUTATION_SHAPE
    unknown = sorted(set(mutation) - {"max_attacks", "parts"})
    if unknown:
        return f"Unknown key {unknown[0]!r}: {MUTATION_SHAPE}"
    if "max_attacks" in mutation:
        wrong = _kind_problem(mutation["max_attacks"], "count")
        if wrong:
            return f'"max_attacks" must be {wrong}.'
    parts = mutation.get("parts", {})
    if not isinstance(parts, dict):
        return f'"parts" must map request parts ({", ".join(PARTS)}) to their attacks.'
    for part, spec in parts.items():
        if part not in PARTS:
            return f'"parts": {part!r} is not a request part ({", ".join(PARTS)}).'
        if not isinstance(spec, dict):
            return f'"parts" → {part}: give {{"attack_set", "probability", "max_attacks"}}.'
        for key, value in spec.items():
            kind = PART_KEYS.get(key)
            if kind is None or (key.startswith("key_") and part != "headers"):
                return f'"parts" → {part}: unknown key {key!r}.'
            wrong = _kind_problem(value, kind)
            if wrong:
                return f'"parts" → {part} → {key} must be {wrong}.'
    return ""


class TestPlan(TenantModel):
    """Requests to send as a test member, how to mutate them, and the rules that judge them.

    `requests`: [{"method", "path", "query": {}, "headers": {}, "cookies": {}, "body": ...}].
    `mutation`: {"max_attacks": 3, "parts": {"method": {"attack_set", "probability",
    "max_attacks"}, "host": ..., "path": ..., "query": ..., "headers": ..., "cookies": ...,
    "body": ...}}; `attack_sets`: {name: [values]}.
    """

    __test__ = False  # not a pytest class

    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    requests = models.JSONField(default=list)
    mutation = models.JSONField(default=dict, blank=True)
    attack_sets = models.JSONField(default=dict, blank=True)
    max_requests = models.PositiveIntegerField(default=150)
    seed = models.PositiveIntegerField(default=1)
    rule_group = models.CharField(max_length=80, default="test-plan:default")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="testplan_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        # The runner reads these as they are: a shape it cannot read would fail each run.
        errors = {}
        problem = mutation_problem(self.mutation)
        if problem:
            errors["mutation"] = problem
        if not isinstance(self.attack_sets, dict) or not all(
            isinstance(values, list) for values in self.attack_sets.values()
        ):
            errors["attack_sets"] = 'Give {"name": [values to try, ...]}, or {}.'
        if errors:
            raise ValidationError(errors)


class TestPlanRun(TenantModel):
    __test__ = False

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        ERROR = "error", "Could not run"

    plan = models.ForeignKey(TestPlan, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    target = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    requests_sent = models.PositiveIntegerField(default=0)
    mutated = models.PositiveIntegerField(default=0)
    status_counts = models.JSONField(default=dict, blank=True)
    server_errors = models.JSONField(default=list, blank=True, help_text="Requests that got 5xx.")
    verdict = models.CharField(max_length=14, blank=True)
    results = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.plan} at {self.started_at:%Y-%m-%d %H:%M}: {self.verdict or self.status}"
