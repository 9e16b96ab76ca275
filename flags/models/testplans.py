"""Test plans: request templates, a mutation plan and oracle rules; and their runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from institutions.models import TenantModel


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
