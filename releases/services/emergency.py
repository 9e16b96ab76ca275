"""Emergency changes to production configuration: admin role, a reason, audited."""

from __future__ import annotations

from django.db import transaction

from institutions import promotion
from institutions.models import Environment
from institutions.services import tenant_object_save
from releases.services.common import ReleaseRefused, roles_of
from releases.services.deploy import lock_production


def production_emergency_change(*, environment: Environment, obj, actor, reason: str):
    """Save a changed production configuration row outside a release."""
    if not environment.is_production:
        raise ReleaseRefused("Emergency changes are for production; change staging directly.")
    if not promotion.is_promotable(type(obj)):
        raise ReleaseRefused(f"{obj._meta.verbose_name} is not release-managed configuration.")
    if "admin" not in roles_of(actor, environment.institution):
        raise ReleaseRefused("An emergency change to production needs the admin role.")
    reason = reason.strip()
    if not reason:
        raise ReleaseRefused("Say why production must change now: a reason is required.")
    with transaction.atomic():
        # Waits for a deploy or rollback under way: landing between its check of production
        # and its write, the change would be overwritten without anyone seeing it.
        lock_production(environment)
        return tenant_object_save(
            environment=environment, obj=obj, actor=actor, reason=f"Emergency change: {reason}"
        )
