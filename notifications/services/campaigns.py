"""Built-in campaigns: welcome series, monthly home value update and offer summary,
refinance alert, appointment messages. Each is a DeliveryPlan fanned out in chunks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from homes.models import Member
from notifications.models import Category, Channel, Delivery
from notifications.selectors import notification_settings
from notifications.services.outbox import DeliveryPlan, deliveries_enqueue, recipients
from notifications.services.suppression import DIGESTS

# A month's digests start on the 1st from 09:00 local time. Missed all of the 1st (beat or
# the workers down: a deploy, an outage), they still start on the following days up to
# this one, from 09:00; a fan-out started on the 1st whose chunk tasks were lost (a worker
# killed, a broker that lost its messages) is resumed on those days too. After it they
# wait for next month, as a monthly digest that arrives well into the month is stale.
DIGEST_CATCH_UP_LAST_DAY = 3
# How long a digest's fan-out record lives: past the last catch-up day, whatever the hour
# of the 1st the fan-out started at.
DIGEST_FANOUT_RECORD_SECONDS = (DIGEST_CATCH_UP_LAST_DAY + 1) * 24 * 3600
REFINANCE_SCAN_MARK_SECONDS = 2 * 24 * 3600  # outlives the local day it marks
CAMPAIGNS = (*DIGESTS, "refinance_alert")
APPOINTMENT_KINDS = ("confirmation", "reminder", "update", "cancellation")
WELCOME_DAYS = (1, 3, 5)


def home_summaries(environment, member_ids: list[int]) -> dict:
    """Home data from the homes app (its selector, or the one settings name)."""
    path = getattr(settings, "NOTIFICATIONS_HOME_SUMMARIES", "homes.selectors.home_summaries")
    return import_string(path)(environment=environment, member_ids=member_ids)


def _money(value: Decimal | None) -> str:
    """$1,234, or with the minus sign before the dollar sign below zero (as the pages)."""
    if value is None:
        return ""
    return f"\u2212${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def home_context(environment, summary) -> dict:
    """A HomeSummary as template context: raw values as strings, and display forms."""
    change = summary.change_pct
    offer_path = summary.top_offer_path or ""
    return {
        "property_id": summary.property_id,
        "address": summary.address,
        "value": str(summary.value) if summary.value is not None else "",
        "value_display": _money(summary.value),
        "range_display": (
            f"{_money(summary.value_low)} to {_money(summary.value_high)}"
            if summary.value_low is not None and summary.value_high is not None
            else ""
        ),
        "as_of": summary.as_of.isoformat() if summary.as_of else "",
        "previous_value_display": _money(summary.previous_value),
        "change_pct": str(change) if change is not None else "",
        "change_display": f"{change:+.1f}%" if change is not None else "",
        "equity_display": _money(summary.equity),
        "borrowing_power_display": _money(summary.borrowing_power),
        "top_offer_title": summary.top_offer_title or "",
        "top_offer_path": offer_path,
        "top_offer_url": f"{environment.base_url}{offer_path}" if offer_path else "",
        "member_rate": str(summary.member_rate) if summary.member_rate is not None else "",
    }


def _rate(rate: Decimal) -> str:
    """6.000 -> "6", 5.875 -> "5.875" (no trailing zeros, never a dangling point)."""
    return format(rate.normalize(), "f")


def _period(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def campaign_plan(*, environment, campaign: str, period: str, member_ids: list[int]):
    """The plan for one chunk of a campaign (None when there is nothing to send)."""
    summaries = home_summaries(environment, member_ids)
    if campaign == "home_value":
        contexts = {
            m: {"home": home_context(environment, s)}
            if (s := summaries.get(m)) and s.value is not None
            else None
            for m in member_ids
        }
        return DeliveryPlan(
            campaign_key=f"home_value:{period}",
            template_key="home_value",
            category=Category.HOME_VALUE,
            contexts=contexts,
            missing_reason="no home value",
            digest_period=_period(period),
        ), member_ids
    if campaign == "offer_summary":
        contexts = {
            m: {"home": home_context(environment, s)}
            if (s := summaries.get(m)) and s.top_offer_title
            else None
            for m in member_ids
        }
        return DeliveryPlan(
            campaign_key=f"offer_summary:{period}",
            template_key="offer_summary",
            category=Category.OFFERS,
            contexts=contexts,
            missing_reason="no offer",
            digest_period=_period(period),
        ), member_ids
    if campaign == "refinance_alert":
        settings_row = notification_settings(environment)
        market = settings_row.market_rate
        if market is None:
            return None, []
        qualifying = {
            m: {"home": home_context(environment, s), "market_rate": _rate(market)}
            for m, s in summaries.items()
            if s.member_rate is not None
            and s.member_rate - market >= settings_row.refinance_threshold
        }
        return DeliveryPlan(
            campaign_key=f"refinance_alert:{period}",
            template_key="refinance_alert",
            category=Category.OFFERS,
            contexts=qualifying,
        ), sorted(qualifying)
    raise ValueError(f"Unknown campaign {campaign!r}; known: {', '.join(CAMPAIGNS)}")


def campaign_enqueue_members(*, environment, campaign: str, period: str, member_ids) -> int:
    """Plan and write one chunk (bulk reads, bulk writes); returns how many were dispatched."""
    plan, wanted = campaign_plan(
        environment=environment, campaign=campaign, period=period, member_ids=list(member_ids)
    )
    if plan is None or not wanted:
        return 0
    members = recipients(environment, wanted)
    with transaction.atomic():
        return len(deliveries_enqueue(environment=environment, plan=plan, members=members))


def campaign_start(*, environment, campaign: str, period: str) -> int:
    """Split a campaign's enrolled members into chunks, one task each; returns the chunks."""
    from notifications.tasks import campaign_chunk

    if campaign not in CAMPAIGNS:
        raise ValueError(f"Unknown campaign {campaign!r}; known: {', '.join(CAMPAIGNS)}")
    _period(period)  # validates
    # Only members without a delivery for this campaign yet: running it again (the hourly
    # beat does) resumes a fan-out whose chunk tasks were lost, and costs one query when done.
    planned = Delivery.objects.filter(
        environment=environment, campaign_key=f"{campaign}:{period}"
    ).values("member_id")
    ids = list(
        Member.objects.filter(environment=environment, enrollment=Member.Enrollment.ENROLLED)
        .exclude(pk__in=planned)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    size = getattr(settings, "NOTIFICATIONS_FANOUT_CHUNK", 1000)
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    if campaign in DIGESTS:
        _digest_fanout_record(environment, campaign, period, chunks)
    for chunk in chunks:
        transaction.on_commit(
            lambda chunk=chunk: campaign_chunk.delay(environment.pk, campaign, period, chunk),
            robust=True,
        )
    return len(chunks)


def welcome_series_enqueue(*, environment, members: list, enrolled_at: datetime | None = None):
    """Day 1, 3 and 5 after enrollment (scheduled rows; the sweeper sends them when due),
    deferred past the member's quiet hours like every message that need not go at once."""
    start = enrolled_at or timezone.now()
    for day in WELCOME_DAYS:
        plan = DeliveryPlan(
            campaign_key=f"welcome_{day}",
            template_key=f"welcome_{day}",
            category=Category.ACCOUNT,
            contexts={m.pk: {} for m in members},
            scheduled_at=start + timedelta(days=day),
        )
        deliveries_enqueue(environment=environment, plan=plan, members=members)


def _digest_fanout_key(environment, campaign: str, period: str) -> str:
    return f"notifications:digest_fanout:{environment.pk}:{campaign}:{period}"


def _digest_fanout_record(environment, campaign: str, period: str, chunks: list) -> None:
    """Record what this pass of a digest's fan-out queued: the first member of each chunk
    (an empty list: nobody was left to plan). A chunk writes all its members' deliveries
    in one transaction, so its first member's delivery shows the chunk done; a pass
    covers every member still unplanned, so the latest one replaces the record. Written
    when the pass commits, as its chunk tasks are queued then."""
    key = _digest_fanout_key(environment, campaign, period)
    firsts = [chunk[0] for chunk in chunks]
    transaction.on_commit(lambda: cache.set(key, firsts, DIGEST_FANOUT_RECORD_SECONDS), robust=True)


def _digest_unfinished(environment, campaign: str, period: str) -> bool:
    """Whether the period's digest may still have members to plan: never started, a chunk
    of its last pass has no deliveries (lost, or still queued), or its record is gone.

    A finished digest costs one cache read and one query on the deliveries' unique index
    (a probe per chunk of its last pass), never a scan of every member. A record the
    cache lost costs one such scan (campaign_start's, which records again), not a digest
    twice: campaign_start leaves out the members planned already."""
    firsts = cache.get(_digest_fanout_key(environment, campaign, period))
    if firsts is None:
        return True
    done = Delivery.objects.filter(
        environment=environment, campaign_key=f"{campaign}:{period}", member_id__in=firsts
    ).values_list("member_id", flat=True)
    return bool(set(firsts) - set(done))


def _refinance_scan_key(environment, local: datetime, rates) -> str:
    return (
        f"notifications:refinance_scan:{environment.pk}:{local.date().isoformat()}:"
        f"{rates.market_rate}:{rates.refinance_threshold}"
    )


def _refinance_scan_due(environment, local: datetime, rates) -> bool:
    """Whether the refinance alert should look at every member not alerted this month:
    once a local day, and again when the market rate or the threshold changes. Each scan
    computes every such member's home figures, so an hourly one costs 24 times the work
    for what a day's changes to lien rates make new. Marked done when the hour's
    transaction commits; a cache that lost the mark costs one more scan, not an alert
    twice (campaign_start leaves out those planned already)."""
    key = _refinance_scan_key(environment, local, rates)
    if cache.get(key):
        return False
    transaction.on_commit(lambda: cache.set(key, True, REFINANCE_SCAN_MARK_SECONDS))
    return True


def campaigns_due(*, environment, now: datetime | None = None) -> dict:
    """What the hourly beat starts: digests on the 1st (local 09:00+; started or resumed
    until the 3rd, DIGEST_CATCH_UP_LAST_DAY, if missed or unfinished), the refinance alert
    (a scan once a local day, or when the rate changes: _refinance_scan_due), welcomes."""
    now = now or timezone.now()
    local = now.astimezone(environment.institution.tz)
    period = f"{local.year}-{local.month:02d}"
    started = []
    if local.hour >= 9:
        if local.day == 1:
            # Every hour of the 1st: also resumes a fan-out whose chunk tasks were lost.
            candidates = list(DIGESTS)
        elif local.day <= DIGEST_CATCH_UP_LAST_DAY:
            # Only a digest never started this month, or whose fan-out has chunks that
            # never wrote their deliveries: a finished one needs no scan of every member
            # each hour (and members enrolled since it went out wait for next month).
            candidates = [c for c in DIGESTS if _digest_unfinished(environment, c, period)]
        else:
            candidates = []
        rates = notification_settings(environment)
        if rates.market_rate is not None and _refinance_scan_due(environment, local, rates):
            candidates.append("refinance_alert")
        for campaign in candidates:
            if campaign_start(environment=environment, campaign=campaign, period=period):
                started.append(f"{campaign}:{period}")
    # Welcome series catch-up: members enrolled in the last days without one.
    since = now - timedelta(days=max(WELCOME_DAYS) + 1)
    recent = Member.objects.filter(
        environment=environment, enrollment=Member.Enrollment.ENROLLED, created_at__gte=since
    ).exclude(
        pk__in=Delivery.objects.filter(environment=environment, campaign_key="welcome_1").values(
            "member_id"
        )
    )
    for member in recent[:5000]:
        welcome_series_enqueue(
            environment=environment, members=[member], enrolled_at=member.created_at
        )
    return {"started": started}


def appointment_message_send(
    *, environment, member, kind: str, context: dict, attachments=()
) -> list[Delivery]:
    """Appointment confirmation, reminder, update or cancellation, by email (with the .ics
    attachments) and push, per the member's preferences. Call it inside the transaction
    that books or changes the appointment; context["key"] (or appointment_id, sequence and
    reminder) makes it idempotent.

    attachments: (filename, content, mimetype) or {"filename", "content", "mimetype"}, e.g.
    ("invite.ics", ics_text, "text/calendar; method=REQUEST").
    """
    if kind not in APPOINTMENT_KINDS:
        raise ValueError(f"Unknown appointment message {kind!r}; one of {APPOINTMENT_KINDS}")
    data = json.loads(json.dumps(context, cls=DjangoJSONEncoder))
    key = data.get("key") or ":".join(
        str(part)
        for part in (
            "appointment",
            data.get("appointment_id", ""),
            kind,
            data.get("sequence", 0),
            data.get("reminder", ""),
        )
    )
    normalized = [
        a if isinstance(a, dict) else {"filename": a[0], "content": a[1], "mimetype": a[2]}
        for a in attachments
    ]
    for a in normalized:
        if isinstance(a["content"], bytes):
            a["content"] = a["content"].decode()
    plan = DeliveryPlan(
        campaign_key=key[:120],
        template_key=f"appointment_{kind}",
        category=Category.APPOINTMENTS,
        contexts={member.pk: {"appointment": data, "attachments": normalized}},
        respect_quiet_hours=False,  # a reminder deferred past the appointment is useless
    )
    with transaction.atomic():
        deliveries_enqueue(environment=environment, plan=plan, members=[member])
        return list(
            Delivery.objects.filter(
                environment=environment, campaign_key=plan.campaign_key, member=member
            ).order_by("channel")
        )


__all__ = ["Channel", "appointment_message_send", "campaign_start", "welcome_series_enqueue"]
