"""What the email provider reports after sending: bounces, rejections, spam complaints and
unsubscribes, from django-anymail's tracking webhooks (any provider anymail supports).

A bounce or a rejection fails the delivery with its reason and marks the address dead (no
more email to it, as a bounce during SMTP does); a complaint or an unsubscribe at the
provider stops the member's marketing email, recorded as consent with the provider's word.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from homes.models import Member
from notifications.models import MARKETING_CATEGORIES, Channel, ConsentRecord, Delivery
from notifications.services.preferences import email_bounce_record, preference_set

logger = logging.getLogger(__name__)

BOUNCES = frozenset({"bounced", "rejected"})
OPT_OUTS = frozenset({"complained", "unsubscribed"})


def email_feedback_record(
    *,
    environment,
    event_type: str,
    recipient: str = "",
    message_id: str = "",
    delivery_id: int | None = None,
    description: str = "",
    details: str = "",
    provider: str = "the email provider",
) -> Delivery | None:
    """Apply one provider event; returns the delivery it was about, when known.

    description: the provider's words; details: the receiving server's answer, if any.

    Events are delivered at least once: applying one again changes nothing more.
    """
    if event_type not in BOUNCES | OPT_OUTS:
        return None
    delivery = _delivery(environment, delivery_id, message_id, recipient)
    members = _members(environment, delivery, recipient)
    detail = " ".join((description or details or "").split()) or "no details"
    with transaction.atomic():
        if event_type in BOUNCES:
            verb = "bounced" if event_type == "bounced" else f"rejected by {provider}"
            reason = f"{verb}: {detail}"
            if delivery is not None:
                Delivery.objects.filter(pk=delivery.pk).update(
                    state=Delivery.State.FAILED,
                    reason=reason[:200],
                    last_error="\n".join(
                        filter(None, (f"{provider} reported {event_type}: {detail}", details))
                    )[:2000],
                )
            for member in members:
                email_bounce_record(
                    environment=environment,
                    member_id=member.pk,
                    address=recipient or member.email,
                    reason=reason,
                )
        else:
            what = "a spam complaint" if event_type == "complained" else "an unsubscribe"
            if delivery is not None:
                Delivery.objects.filter(pk=delivery.pk).update(
                    reason=f"{provider} reported {what}: marketing email stopped"[:200]
                )
            for member in members:
                for category in sorted(MARKETING_CATEGORIES):
                    preference_set(
                        environment=environment,
                        member=member,
                        category=category,
                        channel=Channel.EMAIL,
                        enabled=False,
                        method=ConsentRecord.Method.PROVIDER_FEEDBACK,
                        text_shown=f"{provider} reported {what} from this address.",
                    )
    if delivery is None and not members:
        logger.info("%s event %s for an unknown recipient or message", provider, event_type)
    return delivery


def _delivery(environment, delivery_id, message_id, recipient) -> Delivery | None:
    rows = Delivery.objects.filter(environment=environment, channel=Channel.EMAIL)
    if delivery_id is not None:
        return rows.filter(pk=delivery_id).select_related("member").first()
    if message_id and recipient:
        to = Q(member__email__iexact=recipient) | Q(
            member__isnull=True, recipient_email=recipient.strip().lower()
        )
        return rows.filter(to, provider_message_id=message_id).select_related("member").first()
    return None


def _members(environment, delivery, recipient) -> list[Member]:
    """Whose address it was: the delivery's member if the address is still theirs (an
    address changed since is not the one that bounced), else the members with it."""
    if delivery is not None and delivery.member_id is None:
        return []  # someone who is not a member (a loan officer): no preferences to change
    if delivery is not None and (
        not recipient or delivery.member.email.lower() == recipient.lower()
    ):
        return [delivery.member]
    if not recipient:
        return []
    return list(Member.objects.filter(environment=environment, email__iexact=recipient))
