"""Staging data: the secret behind pseudonyms, and the runs that fill staging with data."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from institutions.fields import EncryptedTextField
from institutions.models import TenantModel


def new_pseudonym_key() -> str:
    return secrets.token_urlsafe(32)


class StagingDataKey(TenantModel):
    """The staging environment's own secret for pseudonyms (one per environment).

    The same production value always gets the same replacement, and without this key no one
    can test guessed names or emails against the replacements (no dictionary attack).
    """

    key = EncryptedTextField(default=new_pseudonym_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment"], name="stagingdatakey_one_per_env")
        ]

    def __str__(self) -> str:
        return f"Pseudonym key · {self.environment}"


class StagingDataJob(TenantModel):
    """A mock generation or an anonymized copy of production into staging, run by a worker."""

    class Kind(models.TextChoices):
        MOCK = "mock", "Mock data"
        REFRESH = "refresh", "Anonymized copy of production"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed: staging unchanged"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Counts only: an error text never quotes a production value (see jobs.error_text).
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display().lower()})"
