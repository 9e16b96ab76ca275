from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from institutions.models import AuditEntry, Branding, Environment, Institution, StaffRole
from institutions.models.tenancy import RESERVED_SLUGS
from institutions.services.audit import audit_record, audited_save, model_snapshot
from institutions.tenancy import environment_scope


def institution_create(
    *,
    slug: str,
    display_name: str,
    legal_name: str,
    nmls_id: str = "",
    time_zone: str = "America/New_York",
    postal_address: str = "",
    digital_banking_origins: list[str] | tuple[str, ...] = (),
    actor=None,
) -> Institution:
    """Create an institution with its staging and production environments and branding."""
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": f"{slug!r} is reserved; choose another slug."})
    institution = Institution(
        slug=slug,
        display_name=display_name,
        legal_name=legal_name,
        nmls_id=nmls_id,
        time_zone=time_zone,
        postal_address=postal_address,
        digital_banking_origins=list(digital_banking_origins),
    )
    institution.full_clean()
    with transaction.atomic():
        institution.save()
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=actor,
            institution=institution,
            obj=institution,
            after=model_snapshot(institution),
        )
        for kind in (Environment.Kind.STAGING, Environment.Kind.PRODUCTION):
            environment = Environment.objects.create(institution=institution, kind=kind)
            with environment_scope(environment):
                Branding.objects.create(environment=environment, display_name=display_name)
    return institution


def institution_update(*, institution: Institution, actor, **changes) -> Institution:
    """Change an institution's own settings (not its slug) and audit the change."""
    if "slug" in changes and changes["slug"] != institution.slug:
        raise ValidationError({"slug": "An institution's slug cannot change: hosts depend on it."})
    return audited_save(institution, actor=actor, institution=institution, changes=changes)


def branding_update(*, environment: Environment, actor, **changes) -> Branding:
    """Change an environment's branding and audit it."""
    with environment_scope(environment):
        branding = Branding.objects.get()
        return audited_save(branding, actor=actor, environment=environment, changes=changes)


def staff_role_grant(*, institution: Institution, user, role: str, actor) -> StaffRole:
    """Give a staff user one role at one institution (idempotent) and audit it."""
    if role not in StaffRole.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with transaction.atomic():
        grant, created = StaffRole.objects.get_or_create(
            user=user, institution=institution, role=role
        )
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        if created:
            audit_record(
                action=AuditEntry.Action.CREATE,
                actor=actor,
                institution=institution,
                obj=grant,
                after=model_snapshot(grant),
            )
    return grant


def staff_role_revoke(*, institution: Institution, user, role: str, actor) -> None:
    with transaction.atomic():
        for grant in StaffRole.objects.filter(user=user, institution=institution, role=role):
            audit_record(
                action=AuditEntry.Action.DELETE,
                actor=actor,
                institution=institution,
                obj=grant,
                before=model_snapshot(grant),
            )
            grant.delete()
