from decimal import Decimal

from django.db import models
from django.utils import timezone

from homes.models import Member
from institutions.models import TenantModel


class Journey(TenantModel):
    """A configurable sequence: a trigger, steps (wait, send, condition) and exit conditions.

    steps: [{"type": "wait", "days": 3}, {"type": "send", "template": "key",
    "channel": "email"}, {"type": "condition", "check": "opened_last", "otherwise": "exit"}]
    exit_conditions: any of "unsubscribed", "offer_selected", "opted_out".
    """

    class Trigger(models.TextChoices):
        ENROLLED = "enrolled", "Member enrolled"
        VALUE_CHANGED = "value_changed", "Home value changed by at least x%"
        OFFER_MATCHED = "offer_matched", "Offer matched"
        OFFER_SAVED = "offer_saved", "Offer saved but not selected"

    name = models.CharField(max_length=120)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    threshold_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("5.00"), help_text="For value changes."
    )
    steps = models.JSONField(default=list)
    exit_conditions = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="journey_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class JourneyProgress(TenantModel):
    """Where one member is in one journey; advanced by beat."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="progress")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    step_index = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE)
    next_run_at = models.DateTimeField(default=timezone.now, db_index=True)
    exit_reason = models.CharField(max_length=200, blank=True)
    history = models.JSONField(default=list, blank=True)
    entered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "journey progress"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "journey", "member"], name="journeyprogress_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.journey} · member {self.member_id} · step {self.step_index}"
