"""Reads: settings, preferences resolved in bulk, delivery metrics (always scoped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import NamedTuple

from django.db.models import Count, Q

from notifications.models import (
    MARKETING_CATEGORIES,
    Category,
    Channel,
    Delivery,
    NotificationProfile,
    NotificationSettings,
    Preference,
    PushSubscription,
    VapidKey,
)


def notification_settings(environment) -> NotificationSettings:
    """The environment's settings row (made on first use)."""
    obj, _ = NotificationSettings.objects.get_or_create(environment=environment)
    return obj


def vapid_public_key(environment) -> str:
    key = VapidKey.objects.filter(environment=environment).first()
    return key.public_key if key else ""


class ProfileFacts(NamedTuple):
    """The NotificationProfile fields planning reads."""

    member_id: int
    digest_frequency: str
    quiet_start: time | None
    quiet_end: time | None
    unopened_count: int
    email_bounced_at: datetime | None
    email_bounce_reason: str
    email_bounced_address: str


def email_bounced(profile, email: str) -> bool:
    """Whether this address is the one that bounced (a corrected address is not)."""
    return bool(
        profile
        and profile.email_bounced_at
        and profile.email_bounced_address
        and profile.email_bounced_address == (email or "").strip().lower()
    )


@dataclass(frozen=True)
class MemberChannels:
    """What planning needs to know about one member, read in bulk."""

    profile: ProfileFacts | None
    prefs: dict[tuple[str, str], bool]
    has_push: bool

    def enabled(self, category: str, channel: str) -> bool:
        if category == Category.ACCOUNT:
            return True  # account messages bypass marketing opt-outs
        return self.prefs.get((category, channel), True)

    @property
    def frequency(self) -> str:
        return self.profile.digest_frequency if self.profile else "monthly"

    def quiet_hours(self, settings_row) -> tuple[time | None, time | None]:
        if self.profile and self.profile.quiet_start and self.profile.quiet_end:
            return self.profile.quiet_start, self.profile.quiet_end
        return settings_row.quiet_start, settings_row.quiet_end


def member_channels(environment, member_ids: list[int]) -> dict[int, MemberChannels]:
    """Profiles, explicit preferences and push presence of many members: three queries."""
    profiles = {
        row[0]: ProfileFacts(*row)
        for row in NotificationProfile.objects.filter(
            environment=environment, member_id__in=member_ids
        ).values_list(*ProfileFacts._fields)
    }
    prefs: dict[int, dict] = {}
    for member_id, category, channel, enabled in Preference.objects.filter(
        environment=environment, member_id__in=member_ids
    ).values_list("member_id", "category", "channel", "enabled"):
        prefs.setdefault(member_id, {})[(category, channel)] = enabled
    with_push = set(
        PushSubscription.objects.filter(environment=environment, member_id__in=member_ids)
        .values_list("member_id", flat=True)
        .distinct()
    )
    return {
        m: MemberChannels(profiles.get(m), prefs.get(m, {}), m in with_push) for m in member_ids
    }


def member_preferences(environment, member) -> dict[tuple[str, str], bool]:
    """Every (category, channel) of one member with its effective value."""
    channels = member_channels(environment, [member.pk])[member.pk]
    return {
        (category, channel): channels.enabled(category, channel)
        for category in Category.values
        for channel in Channel.values
    }


def delivery_failure_rate(environment, start, end, cohort: str = "all"):
    """Failed or dead deliveries among those that finished in [start, end): sent then (an
    open or a click later changes updated_at, not when it was sent), or failed or dead then."""
    from institutions.metrics import Measurement

    rows = Delivery.objects.filter(
        Q(state=Delivery.State.SENT, sent_at__gte=start, sent_at__lt=end)
        | Q(
            state__in=[Delivery.State.FAILED, Delivery.State.DEAD],
            updated_at__gte=start,
            updated_at__lt=end,
        ),
        environment=environment,
    )
    if cohort == "test":
        rows = rows.filter(member__is_test=True)
    elif cohort == "non_test":
        # Exclude test members rather than require a real one: a delivery with no member
        # (an officer's invitation) is not a test member's and counts.
        rows = rows.exclude(member__is_test=True)
    counts = rows.aggregate(
        total=Count("id"), bad=Count("id", filter=Q(state__in=["failed", "dead"]))
    )
    total, bad = counts["total"], counts["bad"]
    if not total:
        return Measurement(None, 0, "no finished deliveries")
    return Measurement(bad / total, total, f"{bad} of {total} deliveries failed or went dead")


__all__ = ["MARKETING_CATEGORIES", "delivery_failure_rate", "email_bounced", "member_channels"]
