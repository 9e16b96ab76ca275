"""Events, the data plan they are validated against, and members' analytics consent."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from institutions.models import Environment, TenantModel


class DataPlanVersion(TenantModel):
    """One version of an environment's data plan; the highest version is the one in force.

    `points` maps an event name to {"description": str, "schema": JSON Schema of its
    properties}. Versions are promoted from staging to production by release.
    """

    class Policy(models.TextChoices):
        ALLOW = "allow", "Allow (record and forward)"
        QUARANTINE = "quarantine", "Block into the quarantine"

    version = models.PositiveIntegerField()
    description = models.CharField(max_length=200, blank=True)
    points = models.JSONField(default=dict, blank=True)
    unplanned = models.CharField(
        max_length=16,
        choices=Policy.choices,
        default=Policy.ALLOW,
        help_text="What happens to events the plan does not name.",
    )
    invalid = models.CharField(
        max_length=16,
        choices=Policy.choices,
        default=Policy.QUARANTINE,
        help_text="What happens to events whose properties fail their schema.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = "data plan version"
        constraints = [
            models.UniqueConstraint(fields=["environment", "version"], name="dataplan_version")
        ]

    def __str__(self) -> str:
        return f"Data plan v{self.version}"

    def plan_changed(self) -> None:
        """Drop the environment's cached plan in force, now and once the change commits.

        Every write path goes through here: the service, and a release's deploy or
        rollback, which saves and deletes the promoted rows themselves.
        """
        from django.db import transaction

        from flags.plans import plan_key
        from institutions import page_cache

        key = plan_key(self.environment_id)
        page_cache.delete(key)
        transaction.on_commit(lambda: page_cache.delete(key))

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        self.plan_changed()

    def delete(self, *args, **kwargs):
        deleted = super().delete(*args, **kwargs)
        self.plan_changed()
        return deleted


class Event(TenantModel):
    """One member event, with its plan status; quarantined events are kept, never forwarded."""

    class Source(models.TextChoices):
        SERVER = "server", "Server"
        WEB = "web", "Web beacon"
        API = "api", "API"

    class PlanStatus(models.TextChoices):
        PLANNED = "planned", "Planned"
        UNPLANNED = "unplanned", "Unplanned"
        INVALID = "invalid", "Invalid"

    class Disposition(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        QUARANTINED = "quarantined", "Quarantined"

    # Every index of the table starts with the environment, so the foreign key needs no
    # index of its own: one index less to update on every page view's event.
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=100)
    member = models.ForeignKey(
        "homes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SERVER)
    is_test = models.BooleanField(default=False, help_text="From the member, never the client.")
    plan_version = models.PositiveIntegerField(null=True, blank=True)
    plan_status = models.CharField(max_length=10, choices=PlanStatus.choices)
    violations = models.JSONField(default=list, blank=True)
    disposition = models.CharField(
        max_length=12, choices=Disposition.choices, default=Disposition.ACCEPTED
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["environment", "name", "occurred_at"], name="event_name_time"),
            models.Index(fields=["environment", "occurred_at"], name="event_time"),
            models.Index(fields=["environment", "plan_version", "plan_status"], name="event_plan"),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


class AnalyticsConsent(TenantModel):
    """A member's answer about analytics; destinations that require consent read it."""

    member = models.ForeignKey("homes.Member", on_delete=models.CASCADE, related_name="+")
    granted = models.BooleanField()
    source = models.CharField(max_length=40, blank=True, help_text="Where the answer was given.")
    text_shown = models.TextField(
        blank=True, help_text="The words the member saw beside the answer (each answer audited)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "analytics consent"
        constraints = [
            models.UniqueConstraint(fields=["environment", "member"], name="consent_one_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {'granted' if self.granted else 'refused'}"
