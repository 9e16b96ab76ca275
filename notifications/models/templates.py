from django.db import models

from institutions.models import TenantModel
from notifications.models.deliveries import Category


class MessageTemplate(TenantModel):
    """The words of one campaign in one environment (Django template syntax; promoted)."""

    key = models.SlugField(
        max_length=60, help_text="Campaign key (home_value, welcome_1, …) or a journey's own."
    )
    name = models.CharField(max_length=120)
    category = models.CharField(max_length=16, choices=Category.choices)
    subject = models.CharField(max_length=200)
    text_body = models.TextField(help_text="Plain text email body.")
    html_body = models.TextField(help_text="HTML email body (inside the branded layout).")
    push_title = models.CharField(max_length=120, blank=True)
    push_body = models.CharField(max_length=300, blank=True)
    push_link = models.CharField(
        max_length=300, blank=True, help_text="Path on the member host the push opens."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "key"], name="messagetemplate_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"
