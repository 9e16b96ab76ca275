from django.db import models
from django.utils import timezone
from django_scopes import ScopedManager

from homes.models import Member
from institutions.models import TenantModel


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PUSH = "push", "Push"


class Category(models.TextChoices):
    HOME_VALUE = "home_value", "Home value updates"
    OFFERS = "offers", "Offers"
    APPOINTMENTS = "appointments", "Appointment messages"
    ACCOUNT = "account", "Account messages"


#: Marketing categories: a member's opt-out (or a one-click unsubscribe) stops them.
MARKETING_CATEGORIES = frozenset({Category.HOME_VALUE, Category.OFFERS})


class DeliveryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """Every change of state (claims, sends, retries, the sweeper) is an UPDATE, which
        auto_now does not see; incremental sync (`updated_since`) and the failure rate read
        updated_at, so an UPDATE sets it unless told otherwise."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Delivery(TenantModel):
    """One message to one member on one channel for one campaign key: the outbox row.

    A few messages go to people who are not members (a loan officer's appointment
    invitation): those rows have no member, and their address in `recipient_email`.

    Written in the same transaction as its cause; the unique key makes every cause
    idempotent (a second run of a campaign adds nothing), and the state machine makes
    sending idempotent (only a pending row can be claimed, atomically).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # permanent: bounce, invalid subscription, bad template
        DEAD = "dead", "Dead"  # transient failures until the attempts ran out
        SUPPRESSED = "suppressed", "Suppressed"  # never sent, by design (see reason)

    campaign_key = models.CharField(max_length=120)
    template_key = models.CharField(max_length=60)
    category = models.CharField(max_length=16, choices=Category.choices)
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    recipient_email = models.EmailField(
        blank=True, help_text="The address of a recipient who is not a member (a loan officer)."
    )
    recipient_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    context = models.JSONField(default=dict, blank=True)
    scheduled_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    sink = models.CharField(
        max_length=16, blank=True, help_text="Where a staging delivery went: sink or allowlist."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(
        environment="environment", _manager_class=models.Manager.from_queryset(DeliveryQuerySet)
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "campaign_key", "member", "channel"],
                name="delivery_unique_per_campaign_member_channel",
            ),
            models.UniqueConstraint(
                fields=["environment", "campaign_key", "recipient_email", "channel"],
                condition=models.Q(member__isnull=True),
                name="delivery_unique_per_campaign_recipient_channel",
            ),
            models.CheckConstraint(
                condition=models.Q(member__isnull=False) | ~models.Q(recipient_email=""),
                name="delivery_has_recipient",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    state__in=["pending", "sending", "sent", "failed", "dead", "suppressed"]
                ),
                name="delivery_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "state", "scheduled_at"], name="delivery_due"),
            models.Index(fields=["environment", "member", "channel"], name="delivery_member"),
        ]

    def __str__(self) -> str:
        to = self.member_id if self.member_id else self.recipient_email
        return f"{self.campaign_key} → {to} ({self.channel}, {self.state})"

    @property
    def address(self) -> str:
        """Where the email goes: the member's address, or the other recipient's."""
        return self.member.email if self.member_id else self.recipient_email
