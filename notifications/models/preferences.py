from django.db import models

from homes.models import Member
from institutions.models import TenantModel
from notifications.models.deliveries import Category, Channel


class NotificationProfile(TenantModel):
    """A member's digest frequency, quiet hours, engagement and dead-channel marks."""

    class Frequency(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"
        NEVER = "never", "Never"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    digest_frequency = models.CharField(
        max_length=12, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    unopened_count = models.PositiveIntegerField(
        default=0, help_text="Emails sent since the member last opened or clicked one."
    )
    last_engaged_at = models.DateTimeField(null=True, blank=True)
    email_bounced_at = models.DateTimeField(null=True, blank=True)
    email_bounce_reason = models.CharField(max_length=200, blank=True)
    email_bounced_address = models.EmailField(
        blank=True,
        help_text="The address that bounced (lower case): email is stopped only while the "
        "member's address is still this one.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "member"], name="notificationprofile_one_per_member"
            )
        ]

    def __str__(self) -> str:
        return f"Notification profile · member {self.member_id}"


class Preference(TenantModel):
    """A member's explicit choice for one category on one channel (absent = the default)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=16, choices=Category.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "member", "category", "channel"],
                name="preference_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.category}/{self.channel}: {'on' if self.enabled else 'off'}"


class ConsentRecord(TenantModel):
    """Evidence of one opt-in or opt-out: what, when, how, and the words the member saw."""

    class Method(models.TextChoices):
        PREFERENCES = "preferences", "Preferences page"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        ONE_CLICK = "one_click", "One-click unsubscribe (RFC 8058)"
        PUSH_PROMPT = "push_prompt", "Browser push prompt"
        STAFF = "staff", "Staff on the member's request"
        DEMO = "demo", "Demo data"
        PROVIDER_FEEDBACK = "provider_feedback", "Complaint or unsubscribe at the email provider"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=16, choices=Category.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    granted = models.BooleanField()
    method = models.CharField(max_length=20, choices=Method.choices)
    text_shown = models.TextField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    client = models.CharField(max_length=64, blank=True, help_text="IP address, if any.")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        verb = "opted in to" if self.granted else "opted out of"
        return f"member {self.member_id} {verb} {self.category}/{self.channel}"
