import re
import secrets
import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django_scopes import ScopedManager

from institutions.fields import EncryptedTextField

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
    "Use 1-40 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)
RESERVED_SLUGS = frozenset({"www", "admin", "api", "staging", "static", "media", "mail"})
TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]

_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_FRAME_ORIGIN = re.compile(
    rf"https://{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::(?P<port>[0-9]{{1,5}}))?", re.IGNORECASE
)


def _frame_origin_problem(entry) -> str:
    """Why `entry` cannot be a frame-ancestors origin, or "" when it can."""
    if not isinstance(entry, str):
        return "an origin is a string"
    if not entry:
        return "it is empty"
    if any(ch.isspace() or ch in ";,'\"" for ch in entry):
        return "spaces, quotes, commas and semicolons are not allowed"
    if "*" in entry:
        return "wildcards are not allowed; list each origin"
    scheme, sep, rest = entry.partition("://")
    if not sep or not rest:
        return "write it as https://host or https://host:port"
    if scheme.lower() != "https":
        return "only https origins are allowed"
    if any(ch in rest for ch in "/?#@"):
        return "an origin has no path, query, fragment or user; leave them out"
    match = _FRAME_ORIGIN.fullmatch(entry)
    if match is None:
        return "write the host as a DNS name and the port as digits"
    if match["port"] is not None and not 0 < int(match["port"]) < 65536:
        return "the port must be between 1 and 65535"
    return ""


def validate_frame_origins(value) -> None:
    """The origins allowed to frame the member tile: https://host[:port] each.

    They are written as they are into the tile's Content-Security-Policy frame-ancestors, so
    a wildcard or bare scheme would let any site frame it and a space or semicolon would
    change or break the header.
    """
    if not isinstance(value, list):
        raise ValidationError(
            'Enter a list of origins, e.g. ["https://banking.example.com"].',
            code="invalid_origins",
        )
    errors = [
        ValidationError(f"{entry!r} is not an allowed origin: {problem}.", code="invalid_origin")
        for entry in value
        if (problem := _frame_origin_problem(entry))
    ]
    if errors:
        raise ValidationError(errors)


class Institution(models.Model):
    """A credit union or bank. It always has exactly two environments."""

    slug = models.SlugField(max_length=40, unique=True, validators=[slug_validator])
    display_name = models.CharField(max_length=120)
    legal_name = models.CharField(max_length=200)
    nmls_id = models.CharField("NMLS id", max_length=20, blank=True)
    time_zone = models.CharField(
        max_length=64, choices=TIME_ZONE_CHOICES, default="America/New_York"
    )
    postal_address = models.TextField(blank=True, help_text="Printed in every email footer.")
    digital_banking_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_frame_origins],
        help_text=(
            "Origins (https://host[:port]) allowed to embed the tile in digital banking, "
            'e.g. ["https://banking.example.com"].'
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def today(self) -> date:
        """The institution's current date, in its time zone: for some hours of every day it
        is not the server's (UTC) date."""
        return timezone.now().astimezone(self.tz).date()


class Environment(models.Model):
    """An institution's staging or production environment: the tenant of every owned row."""

    class Kind(models.TextChoices):
        STAGING = "staging", "Staging"
        PRODUCTION = "production", "Production"

    institution = models.ForeignKey(
        Institution, on_delete=models.CASCADE, related_name="environments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Secret shared with the institution's digital banking to sign launch links (HMAC).
    launch_secret = EncryptedTextField(default=secrets.token_urlsafe, editable=False)

    class Meta:
        ordering = ["institution__display_name", "-kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "kind"], name="environment_one_per_kind"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["staging", "production"]),
                name="environment_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.institution.display_name} · {self.get_kind_display()}"

    @property
    def is_production(self) -> bool:
        return self.kind == self.Kind.PRODUCTION

    @property
    def is_staging(self) -> bool:
        return self.kind == self.Kind.STAGING

    @property
    def host(self) -> str:
        """The environment's own host under BASE_DOMAIN (custom domains aside)."""
        slug = self.institution.slug
        if self.is_production:
            return f"{slug}.{settings.BASE_DOMAIN}"
        return f"{slug}.staging.{settings.BASE_DOMAIN}"

    @property
    def base_url(self) -> str:
        port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
        return f"{settings.PUBLIC_SCHEME}://{self.host}{port}"


class Domain(models.Model):
    """A custom domain that serves one environment.

    A platform-level routing table, not tenant-owned data: a host must map to exactly one
    environment across all institutions, so uniqueness is global on purpose.
    """

    domain = models.CharField(max_length=253, unique=True)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="domains")

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class TenantModel(models.Model):
    """Base of every tenant-owned row: it carries its environment and fails closed.

    Querying through `objects` without an active environment scope raises ScopeError.
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")

    objects = ScopedManager(environment="environment")

    class Meta:
        abstract = True

    def unique_error_message(self, model_class, unique_check):
        # Every unique constraint includes the environment, which staff never choose (it is
        # the one they work in): "Offer product with this Name already exists.", not "with
        # this Environment and Name".
        named = tuple(name for name in unique_check if name != "environment")
        return super().unique_error_message(model_class, named or tuple(unique_check))


class UsedNonce(TenantModel):
    """A single-use token already spent (launch links, staff visits): replay protection."""

    purpose = models.CharField(max_length=32)
    nonce = models.CharField(max_length=128)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "purpose", "nonce"], name="usednonce_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose}:{self.nonce[:8]}…"
