"""Who may still receive a message: enrolment, address, bounce, consent and digest
frequency, checked when a delivery is planned and again when it is sent, since a member
may opt out, bounce, leave the programme or turn the digests off in between (a digest
deferred past the quiet hours, a long send queue).

Account messages bypass marketing opt-outs, never enrolment nor a dead channel: what the
outbox sends a member (the welcome series, journeys) is about the programme, and stops
when the member leaves it. The sign-in link is sent at once, not from the outbox
(services/account.py), and is not checked here.
"""

from __future__ import annotations

from django.db.models import Case, CharField, Value, When

from notifications.models import Channel, Delivery
from notifications.selectors import MemberChannels, email_bounced, member_channels

#: The monthly digests: campaign keys "<campaign>:<YYYY-MM>", sent as the member's digest
#: frequency says.
DIGESTS = ("home_value", "offer_summary")
QUARTER_MONTHS = frozenset({1, 4, 7, 10})


def enrollment_suppression(enrollment: str) -> str:
    """Why a member outside the programme gets nothing from the outbox, or ''."""
    if enrollment != "enrolled":
        return f"member not enrolled ({enrollment})"
    return ""


def digest_month(campaign_key: str) -> int | None:
    """The month of a digest's campaign key ("home_value:2026-05" -> 5); None for others."""
    campaign, _, period = campaign_key.partition(":")
    if campaign not in DIGESTS:
        return None
    _, _, month = period.partition("-")
    return int(month) if month.isdigit() else None


def frequency_suppression(frequency: str, month: int) -> str:
    """Why a member's digest frequency leaves out this month's digest, or ''."""
    if frequency == "never":
        return "digest frequency: never"
    if frequency == "quarterly" and month not in QUARTER_MONTHS:
        return "quarterly digest: not a quarter month"
    return ""


def channel_suppression(category: str, channel: str, email: str, channels: MemberChannels) -> str:
    """Why this member gets nothing of this category on this channel, or ''."""
    if channel == Channel.EMAIL:
        if not email:
            return "no email address"
        if email_bounced(channels.profile, email):
            return f"email address bounced ({channels.profile.email_bounce_reason})"[:200]
    if not channels.enabled(category, channel):
        return f"member opted out of {category} by {channel}"
    return ""


def deliveries_suppress_unqualified(*, environment, claimed) -> set[int]:
    """Mark claimed deliveries whose member no longer qualifies suppressed, with the reason;
    returns their ids. Reads the claimed members' profiles, preferences and push presence in
    three queries and writes one UPDATE, whatever the batch size."""
    to_members = [d for d in claimed if d.member is not None]
    if not to_members:
        return set()
    info = member_channels(environment, sorted({d.member_id for d in to_members}))
    reasons = {}
    for d in to_members:
        channels = info[d.member_id]
        month = digest_month(d.campaign_key)
        why = (
            enrollment_suppression(d.member.enrollment)
            or channel_suppression(d.category, d.channel, d.member.email, channels)
            or (frequency_suppression(channels.frequency, month) if month else "")
        )
        if why:
            reasons[d.pk] = why
    if reasons:
        Delivery.objects.filter(
            pk__in=reasons,
            state=Delivery.State.SENDING,
            claimed_at__in={d.claimed_at for d in to_members if d.pk in reasons},
        ).update(
            state=Delivery.State.SUPPRESSED,
            reason=Case(
                *[When(pk=pk, then=Value(why)) for pk, why in reasons.items()],
                output_field=CharField(),
            ),
        )
    return set(reasons)


def member_digests_suppress(*, environment, member_id: int, frequency: str) -> int:
    """A member's pending digests that their new digest frequency leaves out will not go."""
    reasons = {}
    for pk, key in Delivery.objects.filter(
        environment=environment, member_id=member_id, state=Delivery.State.PENDING
    ).values_list("pk", "campaign_key"):
        month = digest_month(key)
        why = frequency_suppression(frequency, month) if month else ""
        if why:
            reasons[pk] = why
    for why in set(reasons.values()):
        Delivery.objects.filter(
            pk__in=[pk for pk, r in reasons.items() if r == why], state=Delivery.State.PENDING
        ).update(state=Delivery.State.SUPPRESSED, reason=why)
    return len(reasons)


def member_deliveries_suppress(
    *, environment, member_id: int, channel: str, reason: str, category: str | None = None
) -> int:
    """A member's pending deliveries on a channel (of one category, if given) will not go:
    an opt-out or a bounce stops what was planned before it too."""
    rows = Delivery.objects.filter(
        environment=environment, member_id=member_id, channel=channel, state=Delivery.State.PENDING
    )
    if category is not None:
        rows = rows.filter(category=category)
    return rows.update(state=Delivery.State.SUPPRESSED, reason=reason[:200])
