from django.core.validators import RegexValidator
from django.db import models

from institutions.models.tenancy import TenantModel

hex_color = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f4e79.")


class Branding(TenantModel):
    """How the member pages and emails look for one environment (promoted by release)."""

    class Font(models.TextChoices):
        SYSTEM = "system", "System UI"
        SERIF = "serif", "Serif (Georgia)"
        HUMANIST = "humanist", "Humanist (Seravek, Gill Sans)"
        ROUNDED = "rounded", "Rounded (Nunito, Verdana)"

    class HousingNotice(models.TextChoices):
        LENDER = "lender", "Equal Housing Lender"
        OPPORTUNITY = "opportunity", "Equal Housing Opportunity"

    display_name = models.CharField(max_length=120)
    logo = models.ImageField(upload_to="logos/", blank=True)
    primary_color = models.CharField(max_length=7, default="#1f4e79", validators=[hex_color])
    accent_color = models.CharField(max_length=7, default="#e07a1f", validators=[hex_color])
    font = models.CharField(max_length=16, choices=Font.choices, default=Font.SYSTEM)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=32, blank=True)
    support_url = models.URLField(blank=True)
    footer_text = models.TextField(blank=True)
    housing_notice = models.CharField(
        max_length=16, choices=HousingNotice.choices, default=HousingNotice.LENDER
    )

    class Meta:
        verbose_name_plural = "branding"
        constraints = [
            models.UniqueConstraint(fields=["environment"], name="branding_one_per_environment")
        ]

    def __str__(self) -> str:
        return f"Branding · {self.display_name}"

    FONT_STACKS = {
        "system": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
        "serif": 'Georgia, "Times New Roman", serif',
        "humanist": 'Seravek, "Gill Sans Nova", Ubuntu, Calibri, sans-serif',
        "rounded": 'Nunito, "Varela Round", Verdana, sans-serif',
    }

    @property
    def font_stack(self) -> str:
        return self.FONT_STACKS.get(self.font, self.FONT_STACKS["system"])
