"""What members do: enrol or opt out, and view, save or select offers (each an event)."""

from __future__ import annotations

import re
import unicodedata

from django.db import transaction
from django.utils import timezone

from homes.addresses import normal_street
from homes.models import Member, MemberOffer, OfferProduct, Property
from institutions import events
from institutions.models import AuditEntry
from institutions.services import audit_record


class EnrollmentError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _normal(text: str) -> str:
    """The text to compare as written: letters without accents, lower case, no punctuation."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _set_enrollment(member: Member, state: str, *, reason: str) -> Member:
    """In the caller's transaction: the member's row is locked and read again, so a second
    request that read the member before the first one committed records nothing twice."""
    current = Member.objects.select_for_update().values("enrollment", "opted_out_at")
    current = current.get(pk=member.pk)
    if current["enrollment"] == state:
        member.enrollment, member.opted_out_at = state, current["opted_out_at"]
        return member
    before = {"enrollment": current["enrollment"]}
    member.enrollment = state
    member.opted_out_at = timezone.now() if state == Member.Enrollment.OPTED_OUT else None
    member.save(update_fields=["enrollment", "opted_out_at", "updated_at"])
    audit_record(
        action=AuditEntry.Action.UPDATE,
        actor_label=f"member {member.pk}",
        environment=member.environment,
        obj=member,
        before=before,
        after={"enrollment": state},
        reason=reason,
    )
    name = {
        Member.Enrollment.ENROLLED: "member_enrolled",
        Member.Enrollment.OPTED_OUT: "member_opted_out",
    }.get(state)
    if name:
        events.emit(environment=member.environment, name=name, member=member)
    return member


def member_auto_enroll(*, environment, member: Member) -> Member:
    """Auto-enrollment: a pending member becomes enrolled on first visit."""
    if member.enrollment != Member.Enrollment.PENDING:
        return member
    with transaction.atomic():
        return _set_enrollment(member, Member.Enrollment.ENROLLED, reason="auto-enroll")


def member_opt_in(
    *, environment, member: Member, full_name: str, street: str, postal_code: str
) -> Member:
    """Opt-in: the member confirms their name and address against the property record."""
    prop = Property.objects.filter(environment=environment, member=member).order_by("pk").first()
    errors = {}
    if prop is None:
        errors["street"] = "We have no home on record for you; please contact us."
    else:
        if _normal(full_name) != _normal(member.full_name):
            errors["full_name"] = "This name does not match the name on your account."
        if normal_street(street) != normal_street(prop.street):
            errors["street"] = "This address does not match the home we have on record."
        if prop.postal_code and _normal(postal_code)[:5] != _normal(prop.postal_code)[:5]:
            errors["postal_code"] = "This ZIP code does not match the home we have on record."
    if errors:
        raise EnrollmentError(errors)
    with transaction.atomic():
        return _set_enrollment(member, Member.Enrollment.ENROLLED, reason="opt-in confirmed")


def member_opt_out(*, environment, member: Member) -> Member:
    """'I don't own a home': the member is opted out."""
    with transaction.atomic():
        return _set_enrollment(member, Member.Enrollment.OPTED_OUT, reason="I don't own a home")


def _state(environment, member, product) -> MemberOffer:
    state, _ = MemberOffer.objects.select_for_update().get_or_create(
        environment=environment, member=member, product=product
    )
    return state


def _emit(environment, member, name, product) -> None:
    events.emit(
        environment=environment,
        name=name,
        member=member,
        properties={"offer_id": product.pk, "offer_kind": product.kind},
    )


def offer_view(*, environment, member: Member, product: OfferProduct) -> MemberOffer:
    with transaction.atomic():
        state = _state(environment, member, product)
        state.first_viewed_at = state.first_viewed_at or timezone.now()
        state.view_count += 1
        state.save()
        _emit(environment, member, "offer_viewed", product)
    return state


def offer_save(*, environment, member: Member, product: OfferProduct, saved=True) -> MemberOffer:
    """Save (or unsave) the offer. Saving an offer saved already (a double press, a form sent
    again) changes nothing and records nothing: it keeps the time it was first saved."""
    with transaction.atomic():
        state = _state(environment, member, product)
        if (state.saved_at is not None) == saved:
            return state
        state.saved_at = timezone.now() if saved else None
        state.save()
        if saved:
            _emit(environment, member, "offer_saved", product)
    return state


def offer_select(*, environment, member: Member, product: OfferProduct) -> MemberOffer:
    """Select the offer, once: selecting it again keeps the time of the first selection and
    records no second event (lending staff count selections from them)."""
    with transaction.atomic():
        state = _state(environment, member, product)
        if state.selected_at is not None:
            return state
        state.selected_at = timezone.now()
        state.save()
        _emit(environment, member, "offer_selected", product)
    return state


def dashboard_viewed(*, environment, member: Member) -> None:
    # Recorded on every view of the busiest page: a write and a disk flush of its own would
    # take longer than the rest of the page, so it may be batched (MemberEvent.sync_commit).
    events.emit(
        environment=environment,
        name="dashboard_viewed",
        member=member,
        properties={},
        sync_commit=False,
    )
