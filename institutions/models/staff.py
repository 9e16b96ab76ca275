from django.conf import settings
from django.db import models

from institutions.models.tenancy import Institution


class StaffRole(models.Model):
    """One role that one staff user holds at one institution."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        IT = "it", "IT"
        MARKETING = "marketing", "Marketing"
        LENDING = "lending", "Lending"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_roles"
    )
    institution = models.ForeignKey(
        Institution, on_delete=models.CASCADE, related_name="staff_roles"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["institution", "user", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "institution", "role"], name="staffrole_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "it", "marketing", "lending"]),
                name="staffrole_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.institution} · {self.get_role_display()}"
