from django.db import models
from django.utils import timezone

from institutions.models.tenancy import Environment


class TaskFailure(models.Model):
    """A background task that failed for good (its retries spent, or none allowed).

    Written from the worker outside any environment scope, so it is not a TenantModel and
    keeps the plain manager; the admin shows institution staff their environment's entries
    only. A beat task that visits every environment leaves one entry per environment that
    failed. Entries are pruned after 90 days (institutions.services.task_failures).
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=255, blank=True)
    environment = models.ForeignKey(
        Environment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="task_failures",
        help_text="The environment the task ran for (empty: a platform task).",
    )
    exception_type = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    arguments = models.TextField(blank=True, help_text="The task's arguments, shortened.")
    retries = models.PositiveIntegerField(default=0, help_text="Retries made before giving up.")

    objects = models.Manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-at"], name="taskfailure_environment_at"),
            models.Index(fields=["task_name", "-at"], name="taskfailure_task_at"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}: {self.exception_type} ({self.at:%Y-%m-%d %H:%M})"
