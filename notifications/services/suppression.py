"""Who may still receive a message: enrolment, address, bounce and consent, checked when a
delivery is planned and again when it is sent, since a member may opt out, bounce or leave
the programme in between (a digest deferred past the quiet hours, a long send queue).

Account messages bypass marketing opt-outs and enrolment, never a dead channel.
"""

from __future__ import annotations

from django.db.models import Case, CharField, Value, When

from notifications.models import Category, Channel, Delivery
from notifications.selectors import MemberChannels, email_bounced, member_channels


def enrollment_suppression(category: str, enrollment: str) -> str:
    """Why a member outside the programme gets nothing of this category, or ''."""
    if category != Category.ACCOUNT and enrollment != "enrolled":
        return f"member not enrolled ({enrollment})"
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
        why = enrollment_suppression(d.category, d.member.enrollment) or channel_suppression(
            d.category, d.channel, d.member.email, info[d.member_id]
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
