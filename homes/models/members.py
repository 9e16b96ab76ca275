from django.db import models
from django.db.models.functions import Lower

from institutions.models import TenantModel


class Member(TenantModel):
    """A member of an institution, in one environment (staging holds mock members only)."""

    class Enrollment(models.TextChoices):
        PENDING = "pending", "Invited (not enrolled)"
        ENROLLED = "enrolled", "Enrolled"
        OPTED_OUT = "opted_out", "Opted out"

    email = models.EmailField(blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The member's id in the institution's core system."
    )
    is_test = models.BooleanField(
        default=False, help_text="Part of the test cohort (may exist in production)."
    )
    enrollment = models.CharField(
        max_length=16, choices=Enrollment.choices, default=Enrollment.PENDING
    )
    opted_out_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Personal data erased on request; only anonymous aggregates remain.",
    )

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(
                "environment",
                Lower("email"),
                condition=~models.Q(email=""),
                name="member_email_unique",
            ),
            models.UniqueConstraint(
                fields=["environment", "external_id"],
                condition=~models.Q(external_id=""),
                name="member_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.external_id or f"Member {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class MagicLinkToken(TenantModel):
    """A single-use, expiring login link; only the token's hash is stored."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="magic_links")
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # The page the member asked for before signing in, opened after the link: on whatever
    # device the email is read (a path of this site, checked again when it is used).
    next_path = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "token_hash"], name="magiclink_token_unique"
            )
        ]
