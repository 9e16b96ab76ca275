"""Erasing a member on request: their personal data goes, anonymous aggregates stay.

The member row stays as an empty tombstone (so counts and foreign keys of anonymous rows
hold); name, email, external id, homes, liens, valuations, offer states and login links are
removed, and the audit trail's before/after values about them are redacted. Appointments
stay for the officers' counts (time, officer, offer, status) without the member's note or
time zone; the upcoming ones are cancelled the way a member cancels (the slot freed, the
officer told, the calendar event removed once committed, retried while the calendar server
is down), and the events of the others are rewritten in the officer's calendar without the
member. Apps above homes (events, deliveries, preferences) anonymize their rows through
homes.erasure hooks.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from homes import erasure
from homes.models import (
    Appointment,
    Lien,
    MagicLinkToken,
    Member,
    MemberOffer,
    OfferMatch,
    Property,
)
from homes.services.appointments import appointment_cancel
from homes.services.calendars import appointment_calendar_mark
from institutions.models import AuditEntry
from institutions.services import audit_record

ERASED_REPR = "[erased]"
#: Appointment.cancelled_by of the upcoming appointments an erasure cancels.
CANCELLED_BY_ERASURE = "erasure"


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
        appointment_ids = list(
            Appointment.objects.filter(environment=environment, member=member).values_list(
                "pk", flat=True
            )
        )
        _redact_audit(environment, "homes.Member", [member.pk])
        _redact_audit(environment, "homes.Property", property_ids)
        _redact_audit(environment, "homes.Lien", lien_ids)
        # The booking's entry holds the note, and every entry's repr names the member.
        _redact_audit(environment, "homes.Appointment", appointment_ids)
        OfferMatch.objects.filter(environment=environment, member=member).delete()
        Property.objects.filter(environment=environment, pk__in=property_ids).delete()
        MemberOffer.objects.filter(environment=environment, member=member).delete()
        MagicLinkToken.objects.filter(environment=environment, member=member).delete()
        now = timezone.now()
        # Emptied before the appointments are cancelled: the officer's message, the audit
        # entries and the calendar events written from here on name nobody.
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
        cancelled = _appointments_erase(
            environment, member, now=now, actor=actor, actor_label=actor_label
        )
        # After the cancellations: the notifications hook suppresses the member's copy.
        erasure.run(environment=environment, member_ids=[member.pk])
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            object_type="homes.Member",
            object_id=str(member.pk),
            object_repr=ERASED_REPR,
            changes={},
            reason=(
                f"Personal data erased on request ({len(property_ids)} homes removed, "
                f"{cancelled} upcoming appointments cancelled)."
            ),
        )
    member.refresh_from_db()
    return member


def _appointments_erase(environment, member: Member, *, now, actor, actor_label) -> int:
    """The member's appointments keep what counts need, not what the member wrote; the
    upcoming ones are cancelled. Returns how many were cancelled.

    Nothing here waits for a calendar server: each event is marked for writing (deleted
    once cancelled, rewritten without the member otherwise) and written after the commit by
    the calendar sync, which retries a server that is down and then shows the appointment
    "failed" in the admin for staff to retry.
    """
    rows = Appointment.objects.filter(environment=environment, member=member)
    rows.update(note="", member_time_zone="")
    upcoming = rows.filter(status=Appointment.Status.BOOKED, start__gt=now).order_by("pk")
    cancelled = []
    for appointment in upcoming.select_related("officer"):
        appointment_cancel(
            environment=environment,
            appointment=appointment,
            by=CANCELLED_BY_ERASURE,
            actor=actor,
            actor_label=actor_label,
            now=now,
        )  # marks its calendar event for removal, like every cancellation
        cancelled.append(appointment.pk)
    # The others that were written to a calendar, but for those already removed from it:
    # kept ones (past, in progress) still name the member there, and a cancelled one whose
    # removal failed is tried again.
    written = (
        rows.exclude(pk__in=cancelled)
        .exclude(caldav_state=Appointment.CalendarSync.NONE)
        .exclude(status=Appointment.Status.CANCELLED, caldav_state=Appointment.CalendarSync.SYNCED)
    )
    for appointment in written.select_related("officer").order_by("pk"):
        appointment_calendar_mark(environment=environment, appointment=appointment)
    return len(cancelled)


def _redact_audit(environment, object_type: str, ids: list[int]) -> None:
    """The audit trail keeps that a change happened, not the personal data it carried."""
    if not ids:
        return
    AuditEntry.objects.filter(
        environment=environment, object_type=object_type, object_id__in=[str(i) for i in ids]
    ).update(changes={}, object_repr=ERASED_REPR)
