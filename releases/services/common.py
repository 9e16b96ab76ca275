"""What every release service shares: refusals, environments, the policy, the audit trail."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from institutions.models import AuditEntry, Environment, Institution
from institutions.selectors import staff_roles
from institutions.services import audit_record
from releases.models import DeployWindow, Release, ReleasePolicy

ROLE_NAMES = {"admin": "admin", "it": "IT", "marketing": "marketing", "lending": "lending"}


class ReleaseRefused(Exception):
    """A release action that is not allowed; the message says why, for the person acting."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def role_names(roles) -> str:
    return ", ".join(ROLE_NAMES.get(r, r) for r in roles)


def staging_of(environment: Environment) -> Environment:
    if environment.is_staging:
        return environment
    return environment.institution.environments.get(kind=Environment.Kind.STAGING)


def production_of(environment: Environment) -> Environment:
    if environment.is_production:
        return environment
    return environment.institution.environments.get(kind=Environment.Kind.PRODUCTION)


def policy_for(institution: Institution) -> ReleasePolicy:
    """The institution's release policy, made with the defaults on first use."""
    policy = ReleasePolicy.objects.filter(institution=institution).first()
    if policy is not None:
        return policy
    with transaction.atomic():
        policy, created = ReleasePolicy.objects.get_or_create(institution=institution)
        if created:
            # Off-peak by default: Tuesday to Thursday nights, 22:00 to 05:00 local time.
            DeployWindow.objects.create(
                policy=policy, weekdays=[1, 2, 3], start=dt.time(22), end=dt.time(5)
            )
    return policy


def roles_of(actor, institution: Institution) -> frozenset[str]:
    if actor is None:
        return frozenset()
    return staff_roles(actor, institution)


def check_release_environment(environment: Environment, release: Release) -> None:
    if release.environment_id != environment.pk:
        raise ReleaseRefused("This release belongs to another environment.")


def audit_release(
    release: Release, *, what: str, actor=None, reason: str = "", changes: dict | None = None
) -> None:
    audit_record(
        action=AuditEntry.Action.ACTION,
        actor=actor,
        actor_label="" if actor is not None else "release automation",
        environment=release.environment,
        obj=release,
        object_repr=f"{release}: {what}"[:200],
        changes=changes or {},
        reason=reason,
    )


def mail_after_commit(subject: str, body: str, people) -> None:
    """Mail these people (None and duplicates skipped) once the transaction commits, from a
    task that waits out a mail server outage."""
    recipients = sorted({p.email for p in people if p is not None and p.email})
    if recipients:
        from releases.tasks import release_mail

        release_mail.delay_on_commit(subject, body, recipients)


def now() -> dt.datetime:
    return timezone.now()
