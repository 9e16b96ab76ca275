from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, URLValidator, validate_email
from django.db import models

from homes.models import Member
from institutions.fields import EncryptedTextField
from institutions.models import TenantModel


def validate_test_addresses(value) -> None:
    """The staging allowlist: a list of email addresses, each compared without case."""
    if not isinstance(value, list):
        raise ValidationError(
            'Enter a list of email addresses, e.g. ["qa@bank.example"].', code="invalid_addresses"
        )
    errors = []
    for entry in value:
        try:
            if not isinstance(entry, str):
                raise ValidationError("not a string")
            validate_email(entry.strip())
        except ValidationError:
            errors.append(
                ValidationError(f"{entry!r} is not an email address.", code="invalid_address")
            )
    if errors:
        raise ValidationError(errors)


class NotificationSettings(TenantModel):
    """How one environment sends: sender, test inboxes, quiet hours, market rate, backoff."""

    from_email = models.EmailField(blank=True, help_text="Sender address; the default if blank.")
    test_addresses = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_test_addresses],
        help_text="Staging only: these addresses (and their members' devices) get real "
        "deliveries; everything else in staging goes to the sink.",
    )
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="Default quiet hours start (institution time)."
    )
    quiet_end = models.TimeField(null=True, blank=True)
    market_rate = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Today's refinance rate (percent) for refinance alerts.",
    )
    refinance_threshold = models.DecimalField(
        max_digits=5,
        decimal_places=3,
        default=Decimal("0.750"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Alert when the member's rate exceeds the market rate by at least this.",
    )
    unopened_limit = models.PositiveSmallIntegerField(
        default=3, help_text="After this many unopened emails, digests drop to quarterly."
    )

    class Meta:
        verbose_name_plural = "notification settings"
        constraints = [
            models.UniqueConstraint(fields=["environment"], name="notificationsettings_one_per_env")
        ]

    def __str__(self) -> str:
        return f"Notification settings · {self.environment_id}"

    def clean(self) -> None:
        super().clean()
        if isinstance(self.test_addresses, list) and all(
            isinstance(a, str) for a in self.test_addresses
        ):
            self.test_addresses = list(
                dict.fromkeys(a.strip().lower() for a in self.test_addresses)
            )

    @property
    def allowlist(self) -> set[str]:
        """The test addresses, lower case (an entry that is not text, stored before the
        field was checked, is left out rather than failing every send)."""
        value = self.test_addresses if isinstance(self.test_addresses, list) else []
        return {a.strip().lower() for a in value if isinstance(a, str)}


class VapidKey(TenantModel):
    """The environment's Web Push (VAPID) key pair; the private key is stored encrypted."""

    public_key = models.CharField(max_length=100, help_text="Application server key (base64url).")
    private_key = EncryptedTextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment"], name="vapidkey_one_per_env")]

    def __str__(self) -> str:
        return f"VAPID {self.public_key[:12]}…"


class PushSubscription(TenantModel):
    """A member's browser push subscription (removed when the push service says it is gone)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.CharField(
        max_length=1000, validators=[URLValidator(schemes=["https", "http"])]
    )
    p256dh = models.CharField(max_length=120)
    auth = models.CharField(max_length=40)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "endpoint"], name="pushsubscription_unique_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"Push · member {self.member_id} · {self.endpoint[:40]}"
