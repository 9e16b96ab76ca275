from __future__ import annotations

from django.conf import settings
from django.db import models

from institutions.models import TenantModel


class Release(TenantModel):
    """A snapshot of staging's configuration on its way to production.

    The row lives in the staging environment it was made from; its deploy changes the
    institution's production environment.
    """

    class Kind(models.TextChoices):
        PROMOTION = "promotion", "Promotion from staging"
        ROLLBACK = "rollback", "Rollback"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for sign-off"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SCHEDULED = "scheduled", "Scheduled"
        DEPLOYED = "deployed", "Deployed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        SUPERSEDED = "superseded", "Superseded"
        CONFLICT = "conflict", "Stopped: production changed"

    class Watch(models.TextChoices):
        NONE = "", "Not watched"
        WATCHING = "watching", "Watching"
        PASSED = "pass", "Passed"
        FAILED = "fail", "Failed"
        NEEDS_DECISION = "decide", "Inconclusive: needs a decision"
        ACCEPTED = "accepted", "Accepted by a person"
        ENDED = "ended", "Ended: rolled back"

    OPEN_STATES = (State.PENDING, State.APPROVED, State.SCHEDULED)

    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PROMOTION)
    title = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    required_roles = models.JSONField(default=list)

    # What staging held, what production held when the snapshot was taken, and the diff.
    snapshot = models.JSONField(default=dict)
    snapshot_hash = models.CharField(max_length=64)
    base_snapshot = models.JSONField(default=dict)
    base_hash = models.CharField(max_length=64)
    diff = models.JSONField(default=list)

    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_reason = models.TextField(blank=True, help_text="Why the release is in its state.")

    scheduled_for = models.DateTimeField(null=True, blank=True, db_index=True)
    scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    window_override_reason = models.TextField(blank=True)

    deployed_at = models.DateTimeField(null=True, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deploy_reason = models.TextField(blank=True)
    previous_snapshot = models.JSONField(null=True, blank=True)
    conflict = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)

    rolls_back = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )

    watch_state = models.CharField(max_length=16, choices=Watch.choices, default="", blank=True)
    watch_until = models.DateTimeField(null=True, blank=True)
    watch_verdict = models.JSONField(null=True, blank=True)
    watch_history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "number"], name="release_number_unique")
        ]

    def __str__(self) -> str:
        label = self.title or self.get_kind_display()
        return f"Release #{self.number} · {label}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def watch_period_minutes(self) -> int | None:
        """The watch period this deploy was given (the policy may have changed since)."""
        if self.watch_until is None or self.deployed_at is None:
            return None
        return round((self.watch_until - self.deployed_at).total_seconds() / 60)


class SignOff(TenantModel):
    """One signer's decision for one role on one release."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="signoffs")
    role = models.CharField(max_length=16)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "release", "role"], name="signoff_one_per_role"
            ),
            models.UniqueConstraint(
                fields=["environment", "release", "signer"], name="signoff_one_role_per_person"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} for {self.role} by {self.signer}"


class RetiredRow(TenantModel):
    """A production configuration row that a release removed but kept, made inactive,
    because member data refers to it (a member's saved offer, say).

    Snapshots leave retired rows out, so production still equals the release; a later
    release or a rollback that brings the row's key back revives this very row, and the
    member data with it.
    """

    label = models.CharField(max_length=100, help_text="The registered model (app.Model).")
    object_id = models.CharField(max_length=64)
    retired_by = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True, help_text="What refers to the row.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "label", "object_id"], name="retiredrow_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Retired {self.label} #{self.object_id}"
