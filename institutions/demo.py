"""Demo data: institutions and staff here; each higher app registers its own step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import Branding, Institution, StaffRole
from institutions.services import institution_create, staff_role_grant
from institutions.tenancy import environment_scope

DEMO_PASSWORD = "chimney-demo-2026"  # noqa: S105  (printed for local demos only)

DEMO_INSTITUTIONS = [
    {
        "slug": "cascade",
        "display_name": "Cascade Federal Credit Union",
        "legal_name": "Cascade Federal Credit Union",
        "nmls_id": "401234",
        "time_zone": "America/Los_Angeles",
        "postal_address": "1200 Pine Street, Seattle, WA 98101",
        "colors": ("#1f4e79", "#e07a1f"),
    },
    {
        "slug": "harbor",
        "display_name": "Harbor Community Bank",
        "legal_name": "Harbor Community Bank, N.A.",
        "nmls_id": "502987",
        "time_zone": "America/New_York",
        "postal_address": "45 Water Street, Portland, ME 04101",
        "colors": ("#0f6b5c", "#c9a227"),
    },
]


@dataclass
class DemoReport:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str = "") -> None:
        self.lines.append(line)


DemoStep = Callable[[Institution, DemoReport], None]
_steps: list[tuple[int, DemoStep]] = []


def register_demo_step(step: DemoStep, *, order: int = 100) -> DemoStep:
    """Add a step that fills one institution's environments with an app's demo data."""
    _steps.append((order, step))
    return step


def _staff(username: str, *, superuser: bool = False) -> tuple:
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"email": f"{username}@demo.invalid", "is_staff": True, "is_superuser": superuser},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    device = TOTPDevice.objects.filter(user=user).first() or TOTPDevice.objects.create(
        user=user, name="demo authenticator", confirmed=True
    )
    return user, device


def _branding(institution: Institution, spec: dict) -> None:
    """The demo's colours and support contacts, set once, when the demo makes the
    institution (staff may change them afterwards)."""
    for environment in institution.environments.all():
        with environment_scope(environment):
            Branding.objects.filter(environment=environment).update(
                primary_color=spec["colors"][0],
                accent_color=spec["colors"][1],
                support_email=f"help@{spec['slug']}.example",
                support_phone="1-800-555-0100",
            )


def demo_load() -> DemoReport:
    """Load (idempotently) two demo institutions with staff, members and configuration."""
    report = DemoReport()
    with transaction.atomic():
        operator, _ = _staff("operator", superuser=True)
        report.add(f"platform operator: operator / {DEMO_PASSWORD}")
        for spec in DEMO_INSTITUTIONS:
            institution = Institution.objects.filter(slug=spec["slug"]).first()
            if institution is None:
                institution = institution_create(
                    **{k: v for k, v in spec.items() if k != "colors"}, actor=operator
                )
                _branding(institution, spec)
            report.add()
            report.add(f"{institution.display_name}")
            for environment in institution.environments.all():
                report.add(f"  {environment.get_kind_display():<10} {environment.base_url}/")
            for role in StaffRole.Role.values:
                user, _ = _staff(f"{spec['slug']}-{role}")
                staff_role_grant(institution=institution, user=user, role=role, actor=operator)
                report.add(f"  staff ({role}): {user.username} / {DEMO_PASSWORD}")
            for _, step in sorted(_steps, key=lambda item: item[0]):
                step(institution, report)
    return report
