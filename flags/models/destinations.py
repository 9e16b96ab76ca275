"""Where accepted events go (signed webhook, warehouse files, analytics tables), filtered."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from institutions import outbound
from institutions.fields import EncryptedTextField
from institutions.models import TenantModel

RULE_OPS = ("eq", "ne", "in", "not_in", "exists")
RULE_SHAPE = '{"property": ..., "op": eq|ne|in|not_in|exists, "value": ...}'


def rules_problem(rules) -> str:
    """Why a destination's rules cannot be applied to events, or "" when they can."""
    if not isinstance(rules, list):
        return f"Give a list of {RULE_SHAPE}."
    for number, rule in enumerate(rules, start=1):
        if (
            not isinstance(rule, dict)
            or not isinstance(rule.get("property"), str)
            or not rule["property"]
            or rule.get("op", "eq") not in RULE_OPS
        ):
            return f"Rule {number}: give {RULE_SHAPE}."
        if rule.get("op") in ("in", "not_in") and not isinstance(rule.get("value"), list):
            return f'Rule {number}: "{rule["op"]}" needs a list as its value, e.g. ["a", "b"].'
    return ""


class Destination(TenantModel):
    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Signed webhook"
        WAREHOUSE = "warehouse", "Warehouse export files (daily JSONL and CSV)"
        ANALYTICS = "analytics", "Analytics summary tables"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        FAILING = "failing", "Failing (retrying)"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    enabled = models.BooleanField(default=False)
    url = models.URLField(blank=True, help_text="Webhook endpoint (https in production).")
    secret = EncryptedTextField(blank=True, help_text="Webhook signing secret (HMAC-SHA256).")
    timeout_seconds = models.FloatField(default=5.0)
    # Filters.
    exclude_test_members = models.BooleanField(
        default=True, help_text="Never forward events of test members."
    )
    allow_events = models.JSONField(
        default=list, blank=True, help_text="Only these event names (empty: all)."
    )
    deny_events = models.JSONField(default=list, blank=True, help_text="Never these event names.")
    rules = models.JSONField(
        default=list,
        blank=True,
        help_text='Forward only events matching every rule: {"property", "op", "value"} '
        "with op one of eq, ne, in, not_in, exists.",
    )
    require_consent = models.BooleanField(
        default=False, help_text="Only members who granted analytics consent."
    )
    # Runtime state (not promoted).
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    cursor = models.BigIntegerField(
        default=0, help_text="Last event id batched (webhooks) or exported (files, analytics)."
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="destination_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = {}
        problem = outbound.url_problem(self.url) if self.url else ""
        if problem:
            errors["url"] = problem
        # The forwarder applies these to every event: a shape it cannot read would fail
        # each run, so it is refused here, where it is typed.
        for name in ("allow_events", "deny_events"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[name] = 'Give a list of event names, e.g. ["offer_viewed"], or [].'
        problem = rules_problem(self.rules)
        if problem:
            errors["rules"] = problem
        if errors:
            raise ValidationError(errors)


class DestinationBatch(TenantModel):
    """An outbox row: events bound for one destination, sent with retries, else dead-lettered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"  # claimed by a run until next_attempt_at (the lease)
        SENT = "sent", "Sent"
        DEAD = "dead", "Dead-lettered"

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="batches")
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "destination batches"
        indexes = [models.Index(fields=["environment", "status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.destination} events {self.first_event_id}-{self.last_event_id}"


class AnalyticsSummary(TenantModel):
    """Daily counts per event name (and offer or channel) for an analytics destination."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    event_name = models.CharField(max_length=100)
    dimension = models.CharField(max_length=100, blank=True, help_text="offer_id or channel")
    events = models.PositiveIntegerField()
    members = models.PositiveIntegerField()

    class Meta:
        ordering = ["-day", "event_name", "dimension"]
        verbose_name_plural = "analytics summaries"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "destination", "day", "event_name", "dimension"],
                name="analytics_summary_unique",
            )
        ]
