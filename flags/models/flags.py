"""Feature flags per environment (django-waffle's flag model), and guarded rollouts."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from waffle.models import AbstractBaseFlag

from institutions.models import TenantModel


class Flag(TenantModel, AbstractBaseFlag):
    """A waffle flag that belongs to one environment (WAFFLE_FLAG_MODEL).

    Evaluation, caching and impressions live in flags.evaluation; this model only holds
    the targeting. Unused waffle options (cookies, languages, session testing) are removed:
    a member's answer depends on the environment, the flag and the member alone.
    """

    name = models.CharField(max_length=100, help_text="Declared in code (flags.registry).")
    everyone = models.BooleanField(
        null=True,
        blank=True,
        help_text="On (Yes) or off (No) for everyone, overriding the rest; Unknown to target.",
    )
    percent = models.DecimalField(
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(99.9)],
        help_text="Share of members (0.0-99.9), bucketed by environment, flag and member.",
    )
    test_cohort = models.BooleanField(default=False, help_text="On for test members.")
    staff = models.BooleanField(
        default=False, help_text="On for staff (signed in, or visiting as a member)."
    )
    members = models.ManyToManyField(
        "homes.Member", blank=True, related_name="+", help_text="On for these members."
    )
    killed = models.BooleanField(
        default=False, help_text="Kill switch: off for everyone, immediately, until revived."
    )
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_reason = models.TextField(blank=True)

    testing = None
    superusers = None
    authenticated = None
    languages = None
    rollout = None

    class Meta:
        ordering = ["name"]
        verbose_name = "flag"
        verbose_name_plural = "flags"
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="flag_unique_name")
        ]

    # waffle's API, per environment: `waffle.flag_is_active(request, name)` and `{% flag %}`
    # call `Flag.get(name).is_active(request)`. `get` hands out a name-only handle and the
    # evaluation reads the request's one cached snapshot (see flags.evaluation).
    @classmethod
    def get(cls, name: str) -> FlagHandle:
        handle = _handles.get(name)
        if handle is None:
            handle = _handles.setdefault(name, FlagHandle(name))
        return handle

    @classmethod
    def get_all(cls) -> list[Flag]:
        return list(cls.objects.all())

    @classmethod
    def _cache_key(cls, name: str) -> str:
        from institutions.tenancy import current_environment

        environment = current_environment()
        return f"flags:env:{environment.pk if environment else 'none'}:flag:{name}"

    def is_active(self, request, read_only: bool = False) -> bool:
        from flags.evaluation import evaluate

        return evaluate(request, self.name)

    def flush(self) -> None:
        from flags.evaluation import snapshot_invalidate

        snapshot_invalidate(self.environment_id)

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)  # waffle's save flushes on commit
        self.flush()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        self.flush()
        return result


class FlagHandle:
    """What `Flag.get(name)` returns: evaluates by name against the request's snapshot."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def is_active(self, request, read_only: bool = False) -> bool:
        from flags.evaluation import evaluate

        return evaluate(request, self.name)

    def __repr__(self) -> str:
        return f"<FlagHandle {self.name}>"


_handles: dict[str, FlagHandle] = {}


class Rollout(TenantModel):
    """A guarded rollout: test cohort, then percentages, then everyone; each step judged."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed (flag killed)"
        CANCELLED = "cancelled", "Cancelled"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="rollouts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    steps = models.JSONField(
        default=list,
        help_text='Steps in order: "test", a percentage (e.g. 5), or "everyone".',
    )
    step_index = models.PositiveIntegerField(default=0)
    step_started_at = models.DateTimeField()
    step_minutes = models.PositiveIntegerField(
        default=60, help_text="Each step lasts at least this long; the oracle judges it."
    )
    rule_group = models.CharField(max_length=80, default="rollout")
    history = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "flag"],
                condition=models.Q(status="running"),
                name="rollout_one_running_per_flag",
            )
        ]

    def __str__(self) -> str:
        return f"Rollout of {self.flag.name} ({self.get_status_display()})"

    @property
    def current_step(self):
        return self.steps[self.step_index] if self.step_index < len(self.steps) else None
