import functools

from django.core.validators import RegexValidator
from django.db import models

from institutions.models.tenancy import TenantModel

hex_color = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f4e79.")

# Text on a brand colour is one of these, whichever contrasts more: one of the two always
# reaches WCAG's 4.5:1, so any colour an institution picks keeps its text readable.
DARK_TEXT, LIGHT_TEXT = "#000000", "#ffffff"


#: Light backgrounds brand-coloured text and focus outlines sit on in the member pages:
#: the cards and the page behind them (member.css, homes.css).
LIGHT_BACKGROUNDS = ("#ffffff", "#f6f7f9")
#: WCAG 1.4.3 for body text; also more than the 3:1 a focus outline or a border needs.
TEXT_CONTRAST = 4.5
_WEIGHTS = (0.2126, 0.7152, 0.0722)


def _linear(color: str) -> list[float]:
    """The linear-light RGB channels of a #rrggbb colour."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return [channel(int(color[i : i + 2], 16)) for i in (1, 3, 5)]


def _srgb(c: float) -> int:
    c = max(0.0, min(1.0, c))
    c = c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
    return round(c * 255)


def _luminance(color: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    return sum(w * c for w, c in zip(_WEIGHTS, _linear(color), strict=True))


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def readable_text_color(background: str) -> str:
    """Black or white, whichever is easier to read on the background."""
    dark = contrast_ratio(DARK_TEXT, background)
    return DARK_TEXT if dark > contrast_ratio(LIGHT_TEXT, background) else LIGHT_TEXT


def _reads_on_light(color: str) -> bool:
    return all(contrast_ratio(color, bg) >= TEXT_CONTRAST for bg in LIGHT_BACKGROUNDS)


@functools.lru_cache(maxsize=256)
def readable_on_light(color: str) -> str:
    """The colour itself when it reads at 4.5:1 on the member pages' light backgrounds,
    else the same hue darkened until it does (for text, links and focus outlines).

    Darkening scales the colour's linear-light RGB channels by one factor: the hue and
    saturation stay, only the luminance falls (an orange becomes a brown-orange, a sky blue
    a deeper blue). Black always reaches the target, so there is always an answer. Cached:
    every member page asks for its institution's primary colour.
    """
    color = color.lower()
    if _reads_on_light(color):
        return color
    linear = _linear(color)
    darkest_bg = min(_luminance(bg) for bg in LIGHT_BACKGROUNDS)
    target = (darkest_bg + 0.05) / TEXT_CONTRAST - 0.05
    factor = target / _luminance(color)
    while factor > 0:
        darker = "#" + "".join(f"{_srgb(c * factor):02x}" for c in linear)
        if _reads_on_light(darker):
            return darker
        factor -= 0.005  # rounding to whole sRGB steps can land just short
    return "#000000"


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

    @property
    def on_primary_color(self) -> str:
        """The text colour on the primary colour (the header)."""
        return readable_text_color(self.primary_color)

    @property
    def on_accent_color(self) -> str:
        """The text colour on the accent colour (buttons)."""
        return readable_text_color(self.accent_color)
