"""Erasing a member on request: their personal data goes, anonymous aggregates stay.

The member row stays as an empty tombstone (so counts and foreign keys of anonymous rows
hold); name, email, external id, homes, liens, valuations, offer states and login links are
removed, and the audit trail's before/after values about them are redacted. Apps above
homes (events, deliveries, preferences) anonymize their rows through homes.erasure hooks.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from homes import erasure
from homes.models import Lien, MagicLinkToken, Member, MemberOffer, OfferMatch, Property
from institutions.models import AuditEntry
from institutions.services import audit_record

ERASED_REPR = "[erased]"


def member_erase(*, environment, member: Member, actor=None, actor_label: str = "") -> Member:
    """Erase a member's personal data in this environment (idempotent)."""
    if member.environment_id != environment.pk:
        raise ValueError("The member belongs to another environment.")
    with transaction.atomic():
        member = Member.objects.select_for_update().get(environment=environment, pk=member.pk)
        if member.erased_at is not None:
            return member
        property_ids = list(
            Property.objects.filter(environment=environment, member=member).values_list(
                "pk", flat=True
            )
        )
        lien_ids = list(
            Lien.objects.filter(environment=environment, property_id__in=property_ids).values_list(
                "pk", flat=True
            )
        )
        _redact_audit(environment, "homes.Member", [member.pk])
        _redact_audit(environment, "homes.Property", property_ids)
        _redact_audit(environment, "homes.Lien", lien_ids)
        OfferMatch.objects.filter(environment=environment, member=member).delete()
        Property.objects.filter(environment=environment, pk__in=property_ids).delete()
        MemberOffer.objects.filter(environment=environment, member=member).delete()
        MagicLinkToken.objects.filter(environment=environment, member=member).delete()
        erasure.run(environment=environment, member_ids=[member.pk])
        now = timezone.now()
        Member.objects.filter(environment=environment, pk=member.pk).update(
            email="",
            first_name="",
            last_name="",
            external_id="",
            enrollment=Member.Enrollment.OPTED_OUT,
            opted_out_at=now,
            last_login_at=None,
            erased_at=now,
            updated_at=now,
        )
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            object_type="homes.Member",
            object_id=str(member.pk),
            object_repr=ERASED_REPR,
            changes={},
            reason=f"Personal data erased on request ({len(property_ids)} homes removed).",
        )
    member.refresh_from_db()
    return member


def _redact_audit(environment, object_type: str, ids: list[int]) -> None:
    """The audit trail keeps that a change happened, not the personal data it carried."""
    if not ids:
        return
    AuditEntry.objects.filter(
        environment=environment, object_type=object_type, object_id__in=[str(i) for i in ids]
    ).update(changes={}, object_repr=ERASED_REPR)
