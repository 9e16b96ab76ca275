"""Reads for the dashboards: request series, engagement, funnel, flag variant comparison.

Test members are excluded unless asked for (include_test=True).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncHour

from flags import request_metrics
from flags.metric_providers import percentile_from_histogram
from flags.models import BUCKET_FIELDS, Event, RequestMetric
from flags.services import event_buffer
from institutions import metrics

DELIVERY_FAILURES = "delivery_failure_rate"  # registered by the app that delivers messages

FUNNEL = ("dashboard_viewed", "offer_viewed", "offer_saved", "offer_selected")


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion; (0, 0) with no trials."""
    if trials <= 0:
        return (0.0, 0.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - margin), min(1.0, centre + margin))


def _events(environment, start, end, include_test: bool):
    event_buffer.flush()  # this process's page views count at once
    events = Event.objects.filter(
        environment=environment,
        occurred_at__gte=start,
        occurred_at__lt=end,
        disposition=Event.Disposition.ACCEPTED,
    )
    return events if include_test else events.filter(is_test=False)


def request_series(environment, start: datetime, end: datetime, include_test: bool) -> list[dict]:
    """Per minute: requests, 5xx, 5xx rate and p95 (ms)."""
    request_metrics.flush()
    rows = RequestMetric.objects.filter(environment=environment, minute__gte=start, minute__lt=end)
    if not include_test:
        rows = rows.exclude(cohort="test")
    series = (
        rows.values("minute")
        .annotate(count=Sum("count"), errors=Sum("errors"), **{f: Sum(f) for f in BUCKET_FIELDS})
        .order_by("minute")
    )
    return [
        {
            "minute": row["minute"],
            "count": row["count"],
            "errors": row["errors"],
            "error_rate": row["errors"] / row["count"] if row["count"] else 0.0,
            "p95": percentile_from_histogram([row[f] for f in BUCKET_FIELDS], 0.95) or 0.0,
        }
        for row in series
    ]


def events_per_hour(environment, start, end, include_test: bool) -> list[dict]:
    return list(
        _events(environment, start, end, include_test)
        .annotate(hour=TruncHour("occurred_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
    )


def offer_engagement(environment, start, end, include_test: bool) -> list[dict]:
    """Per offer: views, saves and selections (events), and the selection rate with its
    interval: of the members who viewed the offer in the window, the share who selected it
    at or after a view. Counted per member, not per event, so the rate stays a share: a member
    who reloads the page views twice, and a selection whose view fell before the window has
    no view to count against."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    kinds: dict[str, str] = {}
    first_view: dict[str, dict[int, datetime]] = defaultdict(dict)
    selected_at: dict[str, dict[int, datetime]] = defaultdict(dict)
    rows = (
        _events(environment, start, end, include_test)
        .filter(name__in=["offer_viewed", "offer_saved", "offer_selected"])
        .values_list("name", "member_id", "occurred_at", "properties")
        .order_by("occurred_at", "pk")
    )
    for name, member_id, at, properties in rows.iterator(chunk_size=2000):
        offer = str((properties or {}).get("offer_id", "?"))
        counts[offer][name] += 1
        kinds.setdefault(offer, str((properties or {}).get("offer_kind", "")))
        if member_id is None:
            continue
        if name == "offer_viewed":
            first_view[offer].setdefault(member_id, at)
        elif name == "offer_selected":
            selected_at[offer][member_id] = at  # the latest: rows come oldest first
    out = []
    for offer, c in sorted(counts.items()):
        viewed = first_view[offer]
        chose = sum(
            1
            for member, at in selected_at[offer].items()
            if member in viewed and at >= viewed[member]
        )
        low, high = wilson_interval(chose, len(viewed))
        out.append(
            {
                "offer_id": offer,
                "offer_kind": kinds.get(offer, ""),
                "views": c["offer_viewed"],
                "saves": c["offer_saved"],
                "selections": c["offer_selected"],
                "viewers": len(viewed),
                "selectors": chose,
                "rate": chose / len(viewed) if viewed else None,
                "low": low,
                "high": high,
            }
        )
    return out


def channel_choices(environment, start, end, include_test: bool) -> dict[str, int]:
    """How members chose to be told: channel_preference_set events per channel."""
    out: dict[str, int] = defaultdict(int)
    for properties in (
        _events(environment, start, end, include_test)
        .filter(name="channel_preference_set")
        .values_list("properties", flat=True)
    ):
        out[str((properties or {}).get("channel", "?"))] += 1
    return dict(sorted(out.items()))


def funnel(environment, start, end, include_test: bool) -> list[dict]:
    """Distinct members at each step, each step among those who reached the previous one."""
    members_at: dict[str, set[int]] = {}
    rows = (
        _events(environment, start, end, include_test)
        .filter(name__in=FUNNEL, member__isnull=False)
        .values_list("name", "member_id")
        .distinct()
    )
    for name, member_id in rows:
        members_at.setdefault(name, set()).add(member_id)
    out, previous = [], None
    for name in FUNNEL:
        reached = members_at.get(name, set())
        if previous is not None:
            reached = reached & previous
        out.append({"step": name, "members": len(reached)})
        previous = reached
    return out


def variant_comparison(
    environment, flag: str, start, end, include_test: bool, conversion: str = "offer_selected"
) -> list[dict]:
    """Members exposed to each variant of a flag (first impression in the window) and the
    share of them who converted (sent `conversion`) in the same window, at or after that
    first impression: what a member did before seeing the variant is not its effect."""
    impressions = (
        _events(environment, start, end, include_test)
        .filter(name="flag_impression", properties__flag=flag, member__isnull=False)
        .values_list("member_id", "properties", "occurred_at")
        .order_by("occurred_at")
    )
    first_seen: dict[int, tuple[str, datetime]] = {}
    for member_id, properties, at in impressions:
        first_seen.setdefault(member_id, ((properties or {}).get("variant", "?"), at))
    last_conversion: dict[int, datetime] = dict(
        _events(environment, start, end, include_test)
        .filter(name=conversion, member_id__in=list(first_seen))
        .order_by()
        .values("member_id")
        .annotate(last=Max("occurred_at"))
        .values_list("member_id", "last")
    )
    converted = {
        member_id for member_id, last in last_conversion.items() if last >= first_seen[member_id][1]
    }
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for member_id, (variant, _) in first_seen.items():
        stats[variant][0] += 1
        stats[variant][1] += member_id in converted
    out = []
    for variant, (exposed, hits) in sorted(stats.items()):
        low, high = wilson_interval(hits, exposed)
        out.append(
            {
                "variant": variant,
                "members": exposed,
                "converted": hits,
                "rate": hits / exposed if exposed else 0.0,
                "low": low,
                "high": high,
            }
        )
    return out


def delivery_failures(environment, start: datetime, end: datetime, include_test: bool):
    """Delivery failure rate over time, from the metric registry: per hour for windows up to
    two days, else per day. Each point: {start, failed, finished, rate (None: none finished)}.
    None when no app registered the metric."""
    if DELIVERY_FAILURES not in metrics.metric_names():
        return None
    step = timedelta(hours=1) if end - start <= timedelta(hours=48) else timedelta(days=1)
    cohort = "all" if include_test else "non_test"
    moment = start.replace(minute=0, second=0, microsecond=0)
    points = []
    while moment < end:
        m = metrics.measure(
            DELIVERY_FAILURES,
            environment=environment,
            start=max(moment, start),
            end=min(moment + step, end),
            cohort=cohort,
        )
        failed = round(m.value * m.sample) if m.value is not None else 0
        points.append({"start": moment, "failed": failed, "finished": m.sample, "rate": m.value})
        moment += step
    return points


def default_window(now: datetime, hours: int = 24) -> tuple[datetime, datetime]:
    return now - timedelta(hours=hours), now + timedelta(minutes=1)


def analytics_consent_of(environment, member):
    """The member's analytics consent answer (an AnalyticsConsent), or None if never asked."""
    from flags.models import AnalyticsConsent

    return AnalyticsConsent.objects.filter(environment=environment, member=member).first()


def events_count(environment, start, end, include_test: bool) -> int:
    """Accepted events in [start, end)."""
    return _events(environment, start, end, include_test).count()
