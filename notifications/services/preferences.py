"""Preferences, consent records, unsubscribes and engagement."""

from __future__ import annotations

from collections import Counter

from django.db import connection, transaction
from django.utils import timezone

from homes.models import Member
from institutions import events
from institutions.models import AuditEntry
from institutions.services import audit_record
from notifications.models import (
    MARKETING_CATEGORIES,
    Category,
    Channel,
    ConsentRecord,
    Delivery,
    NotificationProfile,
    Preference,
)
from notifications.services.suppression import member_deliveries_suppress, member_digests_suppress

_WHAT = {
    Category.HOME_VALUE: "updates on my home's value",
    Category.OFFERS: "offers and rate alerts",
    Category.APPOINTMENTS: "appointment confirmations and reminders",
    Category.ACCOUNT: "messages about my account",
}
_HOW = {Channel.EMAIL: "by email", Channel.PUSH: "as browser notifications"}


def consent_text(category: str, channel: str, granted: bool) -> str:
    """The words the member sees beside the choice (stored with the consent record)."""
    verb = "Send me" if granted else "Stop sending me"
    return f"{verb} {_WHAT[Category(category)]} {_HOW[Channel(channel)]}."


def preference_set(
    *,
    environment,
    member,
    category: str,
    channel: str,
    enabled: bool,
    method: str,
    text_shown: str = "",
    client: str = "",
    actor=None,
) -> Preference | None:
    """Record a member's choice for one category and channel, with its consent record; an
    opt-out also stops what was planned for that category and channel and not sent yet."""
    category, channel = Category(category), Channel(channel)
    if category == Category.ACCOUNT:
        # Account messages cannot be turned off (they bypass marketing opt-outs).
        return None
    with transaction.atomic():
        if not enabled:
            member_deliveries_suppress(
                environment=environment,
                member_id=member.pk,
                category=category,
                channel=channel,
                reason=f"member opted out of {category} by {channel}",
            )
        previous = Preference.objects.filter(
            environment=environment, member=member, category=category, channel=channel
        ).first()
        if previous is not None and previous.enabled == enabled:
            return previous
        pref, _ = Preference.objects.update_or_create(
            environment=environment,
            member=member,
            category=category,
            channel=channel,
            defaults={"enabled": enabled},
        )
        ConsentRecord.objects.create(
            environment=environment,
            member=member,
            category=category,
            channel=channel,
            granted=enabled,
            method=method,
            text_shown=text_shown or consent_text(category, channel, enabled),
            client=client[:64],
        )
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label="" if actor else f"member {member.pk}",
            environment=environment,
            obj=pref,
            changes={"enabled": {"before": getattr(previous, "enabled", None), "after": enabled}},
            reason=method,
        )
        events.emit(
            environment=environment,
            name="channel_preference_set",
            member=member,
            properties={"channel": channel.value, "category": category.value, "enabled": enabled},
        )
    return pref


#: The unsubscribe page's words (templates/notifications/unsubscribe.html shows these, and
#: the consent records keep them).
UNSUBSCRIBE_ALSO = "Also stop every other update and offer email"
ONE_CLICK_TEXT = (
    "One-click unsubscribe (RFC 8058) from the mail program, through the email's "
    "List-Unsubscribe header; no page of ours was shown."
)


def unsubscribe_question(category: str) -> str:
    """What the unsubscribe page asks about the email's own category."""
    return f"Stop emails with {Category(category).label.lower()}?"


def unsubscribe(
    *, environment, member, category: str, method: str, client: str = "", all_marketing=False
) -> list[str]:
    """Stop email for the link's category and, with `all_marketing`, for every marketing
    category too (home value updates, offers: what the page's box says; never appointment
    messages, which a member turns off on the preferences page); returns what was stopped.

    The consent records keep the page's words, or for a one-click POST (RFC 8058, from
    the mail program) that no page was shown.
    """
    category = Category(category)
    if category == Category.ACCOUNT:
        return []
    categories = [category]
    if all_marketing:
        categories += sorted(MARKETING_CATEGORIES - {category})
    if method == ConsentRecord.Method.ONE_CLICK:
        text = ONE_CLICK_TEXT
    else:
        text = "\n".join(
            [unsubscribe_question(category), *([UNSUBSCRIBE_ALSO] if all_marketing else [])]
        )
    stopped = []
    for cat in categories:
        preference_set(
            environment=environment,
            member=member,
            category=cat,
            channel=Channel.EMAIL,
            enabled=False,
            method=method,
            text_shown=text,
            client=client,
        )
        stopped.append(cat.value)
    return stopped


def profile_update(*, environment, member, actor=None, **fields) -> NotificationProfile:
    """Change digest frequency or quiet hours (validated; audited). A frequency that leaves
    out digests already planned and not sent yet (deferred past the quiet hours, say)
    stops them too."""
    allowed = {"digest_frequency", "quiet_start", "quiet_end"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Unknown profile fields: {sorted(unknown)}")
    with transaction.atomic():
        profile, _ = NotificationProfile.objects.get_or_create(
            environment=environment, member=member
        )
        before = {k: str(getattr(profile, k)) for k in fields}
        for name, value in fields.items():
            setattr(profile, name, value)
        profile.full_clean(exclude=["environment", "member"])
        profile.save()
        if "digest_frequency" in fields:
            member_digests_suppress(
                environment=environment, member_id=member.pk, frequency=profile.digest_frequency
            )
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label="" if actor else f"member {member.pk}",
            environment=environment,
            obj=profile,
            before=before,
            after={k: str(getattr(profile, k)) for k in fields},
        )
    return profile


def engagement_record(*, environment, delivery_id: int, kind: str) -> Delivery | None:
    """An open or click: the member is engaged again (digests go back to their frequency)."""
    now = timezone.now()
    delivery = Delivery.objects.filter(environment=environment, pk=delivery_id).first()
    if delivery is None:
        return None
    field = "opened_at" if kind == "open" else "clicked_at"
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, **{f"{field}__isnull": True}).update(**{field: now})
        if kind == "click":  # a click implies the email was opened
            Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(opened_at=now)
        NotificationProfile.objects.update_or_create(
            environment=environment,
            member_id=delivery.member_id,
            defaults={"unopened_count": 0, "last_engaged_at": now},
        )
    return delivery


def email_bounce_record(*, environment, member_id: int, address: str, reason: str) -> None:
    """A hard bounce marks the address dead: nothing more is sent to it, account mail
    included, pending email too. Only that address: once the member's address is another
    (corrected by staff, a sync, the member), email flows again."""
    address = address.strip().lower()
    with transaction.atomic():
        NotificationProfile.objects.update_or_create(
            environment=environment,
            member_id=member_id,
            defaults={
                "email_bounced_at": timezone.now(),
                "email_bounce_reason": reason[:200],
                "email_bounced_address": address,
            },
        )
        still_theirs = Member.objects.filter(
            environment=environment, pk=member_id, email__iexact=address
        ).exists()
        if address and still_theirs:
            member_deliveries_suppress(
                environment=environment,
                member_id=member_id,
                channel=Channel.EMAIL,
                reason=f"email address bounced ({reason})",
            )


def emails_sent_count(*, environment, member_ids: list[int]) -> None:
    """Count marketing emails towards disengagement (reset by an open or a click).

    One upsert per few hundred members: a digest reaches every member once a month.
    """
    if not member_ids:
        return
    counts = sorted(Counter(member_ids).items())
    table = connection.ops.quote_name(NotificationProfile._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        for i in range(0, len(counts), 500):
            chunk = counts[i : i + 500]
            cursor.execute(
                _PROFILE_COUNT_UPSERT.format(
                    table=table, values=", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                ),
                [
                    value
                    for member_id, n in chunk
                    for value in (
                        environment.pk,
                        member_id,
                        NotificationProfile.Frequency.MONTHLY,
                        n,
                        "",
                        "",
                        now,
                    )
                ],
            )


_PROFILE_COUNT_UPSERT = (
    "INSERT INTO {table} (environment_id, member_id, digest_frequency, unopened_count,"
    " email_bounce_reason, email_bounced_address, updated_at) VALUES {values}"
    " ON CONFLICT (environment_id, member_id) DO UPDATE"
    " SET unopened_count = {table}.unopened_count + excluded.unopened_count"
)
