"""The outbox: plan deliveries with their suppression reasons, write them in bulk in the
cause's transaction (outbox_writes), dispatch them by id batches, reschedule and sweep the
stuck. Sending claims them first (claims)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import Channel, Delivery
from notifications.selectors import member_channels, notification_settings
from notifications.services.claims import ClaimedDelivery
from notifications.services.outbox_writes import rows_write_bulk, rows_write_copy
from notifications.services.suppression import (
    QUARTER_MONTHS,
    channel_suppression,
    enrollment_suppression,
    frequency_suppression,
)


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass
class DeliveryPlan:
    """What one campaign run wants to send: its key, template, and per-member context.

    contexts[member_id] is the template context, or None when the member has nothing to
    receive (then `missing_reason` is the suppression reason, e.g. "no home value").
    """

    campaign_key: str
    template_key: str
    category: str
    contexts: dict[int, dict | None]
    missing_reason: str = "nothing to send"
    channels: tuple[str, ...] = (Channel.EMAIL, Channel.PUSH)
    digest_period: tuple[int, int] | None = None  # (year, month) for digests
    scheduled_at: datetime | None = None
    # Quiet hours defer every message (account ones too: a welcome can wait till morning)
    # but those that must go at once, e.g. an appointment reminder.
    respect_quiet_hours: bool = True
    extra_suppressions: dict[int, str] = field(default_factory=dict)


def _in_quiet_hours(local: datetime, start, end) -> datetime | None:
    """The local end of the quiet period `local` falls in, or None."""
    if not start or not end or start == end:
        return None
    t = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # wraps midnight: 21:00 to 08:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=local.tzinfo)


def _suppression(plan, member, channels, settings_row) -> str:
    """Why this member gets nothing from this plan (any channel), or ''."""
    if plan.extra_suppressions.get(member.pk):
        return plan.extra_suppressions[member.pk]
    not_enrolled = enrollment_suppression(member.enrollment)
    if not_enrolled:
        return not_enrolled
    if plan.contexts.get(member.pk) is None:
        return plan.missing_reason
    if plan.digest_period is not None:
        month = plan.digest_period[1]
        chosen = frequency_suppression(channels.frequency, month)
        if chosen:
            return chosen
        disengaged = bool(
            channels.profile and channels.profile.unopened_count >= settings_row.unopened_limit
        )
        if disengaged and month not in QUARTER_MONTHS:
            return "disengaged: quarterly until the member opens or clicks again"
    return ""


class PlannedDelivery(NamedTuple):
    """One row a plan writes (the columns that differ between rows)."""

    member_id: int
    channel: str
    state: str
    reason: str
    context: dict
    scheduled_at: datetime


def deliveries_build(*, environment, plan: DeliveryPlan, members: list) -> list[PlannedDelivery]:
    """The rows for these members: pending, deferred, or suppressed with a reason.

    members: anything with pk, email and enrollment (Member rows, or Recipient tuples).
    """
    now = timezone.now()
    settings_row = notification_settings(environment)
    info = member_channels(environment, [m.pk for m in members])
    tz = environment.institution.tz
    scheduled = plan.scheduled_at or now
    local = scheduled.astimezone(tz)
    deferred: dict[tuple, datetime] = {}  # quiet hours -> when they end (or `scheduled`)
    pending, suppressed = Delivery.State.PENDING, Delivery.State.SUPPRESSED
    rows = []
    for member in members:
        channels = info[member.pk]
        reason = _suppression(plan, member, channels, settings_row)
        wanted = [c for c in plan.channels if c != Channel.PUSH or channels.has_push]
        no_device = ""
        if not wanted:
            # Push only (a journey's push step): no email in its place, which the member
            # may have turned off for this; a visible row says why nothing went.
            wanted, no_device = list(plan.channels), "no push subscription"
        context = plan.contexts.get(member.pk) or {}
        for channel in wanted:
            why = (
                reason
                or no_device
                or channel_suppression(plan.category, channel, member.email, channels)
            )
            when = scheduled
            if not why and plan.respect_quiet_hours:
                hours = channels.quiet_hours(settings_row)
                if hours not in deferred:
                    end = _in_quiet_hours(local, *hours)
                    deferred[hours] = scheduled if end is None else end  # deferred, not dropped
                when = deferred[hours]
            rows.append(
                PlannedDelivery(
                    member.pk, channel, suppressed if why else pending, why, context, when
                )
            )
    return rows


class Recipient(NamedTuple):
    """What planning reads of a member (no model instance needed)."""

    pk: int
    email: str
    enrollment: str


def recipients(environment, member_ids) -> list[Recipient]:
    """The members with these ids, as planning needs them, in one query."""
    from homes.models import Member

    return [
        Recipient(*row)
        for row in Member.objects.filter(environment=environment, pk__in=member_ids)
        .order_by("pk")
        .values_list("pk", "email", "enrollment")
    ]


def deliveries_enqueue(*, environment, plan: DeliveryPlan, members: list) -> list[int]:
    """Write a plan's deliveries (idempotent on the unique key) and dispatch the due ones.

    Call it inside the cause's transaction: the rows commit with the cause, and the send
    tasks are queued only after the commit.
    """
    rows = deliveries_build(environment=environment, plan=plan, members=members)
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql" and len(rows) >= _setting(
            "NOTIFICATIONS_COPY_FROM", 100
        ):
            due, complete = rows_write_copy(environment, plan, rows, now)
        else:
            due, complete = rows_write_bulk(environment, plan, rows, now)
        if not complete:
            # Some rows were there already (a second run, a redelivered task): send those
            # of them that are due and were never queued, as the first writer would have.
            member_ids = sorted({r.member_id for r in rows})
            size = _setting("NOTIFICATIONS_WRITE_BATCH", 2000)
            for i in range(0, len(member_ids), size):
                due += _take_due(
                    Delivery.objects.filter(
                        environment=environment,
                        campaign_key=plan.campaign_key,
                        member_id__in=member_ids[i : i + size],
                        dispatched_at__isnull=True,
                    ),
                    now,
                )
        deliveries_dispatch(environment=environment, delivery_ids=due)
    return due


def recipient_delivery_enqueue(
    *,
    environment,
    campaign_key: str,
    template_key: str,
    category: str,
    email: str,
    name: str = "",
    context: dict,
) -> Delivery:
    """One email to someone who is not a member (a loan officer), through the outbox like
    every other: idempotent on (campaign key, address), sent after the cause commits,
    retried with backoff, and in staging sent to the sink unless the address is allowlisted.
    """
    email = email.strip().lower()
    if not email:
        raise ValueError("A recipient who is not a member needs an email address.")
    row = Delivery(
        environment=environment,
        campaign_key=campaign_key[:120],
        template_key=template_key,
        category=category,
        member=None,
        recipient_email=email,
        recipient_name=name[:200],
        channel=Channel.EMAIL,
        context=context,
        scheduled_at=timezone.now(),
    )
    with transaction.atomic():
        Delivery.objects.bulk_create([row], ignore_conflicts=True)
        rows = Delivery.objects.filter(
            environment=environment,
            campaign_key=row.campaign_key,
            member__isnull=True,
            recipient_email=email,
            channel=Channel.EMAIL,
        )
        due = _take_due(rows.filter(dispatched_at__isnull=True))
        deliveries_dispatch(environment=environment, delivery_ids=due)
        return rows.get()


def _take_due(queryset, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    ids = list(
        queryset.filter(state=Delivery.State.PENDING, scheduled_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    if ids:
        Delivery.objects.filter(pk__in=ids).update(dispatched_at=now)
    return ids


def deliveries_dispatch(
    *, environment, delivery_ids: Iterable[int], eta: datetime | None = None
) -> None:
    """Queue send tasks for these ids in batches, after the current transaction commits;
    `eta`: not before then (no earlier than the rows' scheduled time, or the claim finds
    them not due)."""
    from notifications.tasks import send_deliveries

    ids = sorted(set(delivery_ids))
    size = _setting("NOTIFICATIONS_SEND_BATCH", 500)
    for i in range(0, len(ids), size):
        batch = ids[i : i + size]
        transaction.on_commit(
            lambda batch=batch: send_deliveries.apply_async(args=[environment.pk, batch], eta=eta),
            robust=True,
        )


def backoff_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), plus up to as much again at random."""
    base = _setting("NOTIFICATIONS_RETRY_BASE_SECONDS", 30)
    cap = _setting("NOTIFICATIONS_RETRY_MAX_SECONDS", 1800)
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay + random.uniform(0, delay)  # noqa: S311  (jitter, not a secret)


def delivery_reschedule(*, delivery: ClaimedDelivery, error: str) -> datetime | None:
    """A transient failure: retry later with backoff (returns when), or dead once the
    attempts ran out (None)."""
    max_attempts = _setting("NOTIFICATIONS_MAX_ATTEMPTS", 5)
    if delivery.attempts >= max_attempts:
        delivery.mine().update(
            state=Delivery.State.DEAD,
            reason=f"gave up after {delivery.attempts} attempts",
            last_error=error[:2000],
        )
        return None
    delay = backoff_delay(delivery.attempts)
    when = timezone.now() + timedelta(seconds=delay)
    delivery.mine().update(
        state=Delivery.State.PENDING,
        scheduled_at=when,
        dispatched_at=when,
        last_error=error[:2000],
        reason=f"retrying (attempt {delivery.attempts} failed)",
    )
    return when


def deliveries_sweep(*, environment, now: datetime | None = None) -> dict[str, int]:
    """Re-dispatch what is stuck: due pending rows nobody queued, sending rows past the lease."""
    now = now or timezone.now()
    lease = timedelta(seconds=_setting("NOTIFICATIONS_SENDING_LEASE_SECONDS", 600))
    redispatch = timedelta(seconds=_setting("NOTIFICATIONS_REDISPATCH_SECONDS", 300))
    with transaction.atomic():
        # A worker died mid-send. Email is recorded sent in a transaction that commits
        # with the SMTP transaction's final dot, so a row still "sending" was not delivered
        # (but for a kill in the instant between the dot and that commit).
        released = Delivery.objects.filter(
            environment=environment, state=Delivery.State.SENDING, claimed_at__lt=now - lease
        ).update(state=Delivery.State.PENDING, dispatched_at=None, reason="released by sweeper")
        due = _take_due(
            Delivery.objects.filter(environment=environment).filter(
                Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - redispatch)
            ),
            now,
        )
        deliveries_dispatch(environment=environment, delivery_ids=due)
    return {"released": released, "dispatched": len(due)}


def deliveries_retry(*, environment, delivery_ids: list[int], actor=None) -> int:
    """Staff retry dead or failed deliveries: back to pending with fresh attempts."""
    from institutions.models import AuditEntry
    from institutions.services import audit_record

    with transaction.atomic():
        rows = Delivery.objects.filter(
            environment=environment,
            pk__in=delivery_ids,
            state__in=[Delivery.State.DEAD, Delivery.State.FAILED],
        )
        ids = list(rows.values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=ids).update(
            state=Delivery.State.PENDING,
            attempts=0,
            scheduled_at=timezone.now(),
            dispatched_at=timezone.now(),
            reason="retried by staff",
        )
        for pk in ids:
            audit_record(
                action=AuditEntry.Action.ACTION,
                actor=actor,
                environment=environment,
                object_type="notifications.Delivery",
                object_id=str(pk),
                object_repr=f"delivery {pk}",
                reason="retry",
            )
        deliveries_dispatch(environment=environment, delivery_ids=ids)
    return len(ids)
