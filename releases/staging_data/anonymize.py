"""Copy production members into staging with every personal detail replaced.

Names, emails and external ids are replaced deterministically (a member keeps the same
staging identity across refreshes); staging addresses all go to a sink domain. Property,
lien and sale data join this copy once the homes models exist (see `pseudonyms` for the
street-number, phone and amount helpers they use).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from homes.models import Member
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record
from releases.services.common import ReleaseRefused, production_of, roles_of
from releases.staging_data import pseudonyms

CHUNK = 500


def sink_domain() -> str:
    return getattr(settings, "STAGING_EMAIL_SINK_DOMAIN", "staging-sink.invalid")


def staging_refresh_from_production(
    *, environment: Environment, actor, progress: Callable[[int, int], None] | None = None
) -> int:
    """Replace staging's members with an anonymized copy of production's; returns the count."""
    if not environment.is_staging:
        raise ReleaseRefused("The anonymized copy goes into staging only.")
    if actor is not None and not roles_of(actor, environment.institution) & {"admin", "it"}:
        raise ReleaseRefused("Refreshing staging needs the IT or admin role.")
    production = production_of(environment)
    salt = environment.institution.slug
    source = Member._base_manager.filter(environment=production).order_by("pk")
    total = source.count()
    avoid = set()
    for first, last in source.values_list("first_name", "last_name"):
        avoid.update({first.lower(), last.lower()})
    domain = sink_domain()
    copied = 0
    with transaction.atomic():
        Member._base_manager.filter(environment=environment).delete()
        for start in range(0, total, CHUNK):
            batch = []
            for member in source[start : start + CHUNK]:
                key = str(member.pk)
                batch.append(
                    Member(
                        environment=environment,
                        first_name=pseudonyms.pick(
                            pseudonyms.FIRST_NAMES, "first", key, salt, avoid=avoid
                        )
                        if member.first_name
                        else "",
                        last_name=pseudonyms.pick(
                            pseudonyms.LAST_NAMES, "last", key, salt, avoid=avoid
                        )
                        if member.last_name
                        else "",
                        email=pseudonyms.email(key, salt, domain) if member.email else "",
                        external_id=pseudonyms.external_id(member.external_id, salt)
                        if member.external_id
                        else "",
                        is_test=member.is_test,
                        enrollment=member.enrollment,
                        opted_out_at=member.opted_out_at,
                    )
                )
            Member._base_manager.bulk_create(batch)
            copied += len(batch)
            if progress:
                progress(copied, total)
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label="" if actor else "staging refresh",
            environment=environment,
            object_type="homes.Member",
            object_repr=f"Staging refreshed from production: {copied} members anonymized",
        )
    return copied
