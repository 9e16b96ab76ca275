"""The integration API's own rows: API keys per environment and stored idempotent responses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from institutions.models.tenancy import Environment, TenantModel


class ApiScope(models.TextChoices):
    """What a key may do. `members:write` implies `members:read`."""

    MEMBERS_READ = "members:read", "Read members, their homes and liens"
    MEMBERS_WRITE = "members:write", "Upsert and erase members, their homes and liens"
    HOMES_WRITE = "homes:write", "Import valuations and recorded sales"
    EVENTS_WRITE = "events:write", "Send events"
    OFFERS_READ = "offers:read", "Read the offers matched for members"
    METRICS_READ = "metrics:read", "Read engagement metrics, delivery status and releases"


#: A scope that grants others with it.
SCOPE_IMPLIES = {ApiScope.MEMBERS_WRITE: {ApiScope.MEMBERS_READ}}

#: The visible start of a key says which environment it belongs to.
KEY_PREFIXES = {Environment.Kind.STAGING: "chk_test_", Environment.Kind.PRODUCTION: "chk_live_"}


class ApiKey(TenantModel):
    """A key an institution's system uses on one environment's host.

    The full key is `chk_<test|live>_<public_id>_<secret>`; only its SHA-256 is stored and
    the key is shown once, when it is made. `public_id` finds the row; the hash proves it.
    """

    name = models.CharField(max_length=100, help_text="Who uses it, e.g. 'core banking'.")
    public_id = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused after this time (empty: no expiry)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Written at most once a minute."
    )
    rotated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "public_id"], name="apikey_public_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @property
    def display_prefix(self) -> str:
        """What may be shown of a key: its environment prefix and public id."""
        kind = self.environment.kind if self.environment_id else Environment.Kind.STAGING
        return f"{KEY_PREFIXES[kind]}{self.public_id}"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def status(self) -> str:
        now = timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def granted_scopes(self) -> frozenset[str]:
        granted = set(self.scopes or ())
        for scope in list(granted):
            granted |= {str(s) for s in SCOPE_IMPLIES.get(scope, ())}
        return frozenset(granted)


class IdempotencyRecord(TenantModel):
    """The first request made with an `Idempotency-Key`, and the response it got.

    The unique constraint makes the first writer win: a concurrent request with the same key
    finds the row in progress (409), a later retry gets the stored response back.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The JSON answer, as sent.")
    created_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(help_text="An unfinished request is abandoned after.")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "api_key", "key"], name="idempotency_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] {self.state}"
