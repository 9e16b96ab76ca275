"""The metrics flags owns, registered with institutions.metrics for the oracle."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db.models import Count, Q, Sum

from flags import request_metrics
from flags.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, Event, RequestMetric
from flags.services import event_buffer
from institutions.metrics import NON_NEGATIVE, SHARE, Measurement, register_metric
from institutions.tenancy import environment_scope

ENGAGEMENT_EVENTS = (
    "dashboard_viewed",
    "offer_viewed",
    "offer_saved",
    "offer_selected",
    "channel_preference_set",
    "flag_impression",
)
REQUEST_COHORTS = {"all": None, "test": ["test"], "non_test": ["member", "anonymous"]}


def request_totals(environment, start: datetime, end: datetime, cohort: str) -> dict:
    """Sums of the request counters over the minutes in [start, end).

    The bucket `start` falls in counts whole, so a test plan judged seconds after it starts
    sees its requests; a caller that must not count the seconds before `start` (the release
    watch) starts on a whole minute.
    """
    request_metrics.flush()
    with environment_scope(environment):
        rows = RequestMetric.objects.filter(
            environment=environment,
            minute__gte=start.replace(second=0, microsecond=0),
            minute__lt=end,
        )
        if REQUEST_COHORTS[cohort]:
            rows = rows.filter(cohort__in=REQUEST_COHORTS[cohort])
        sums = rows.aggregate(
            count=Sum("count"), errors=Sum("errors"), **{f: Sum(f) for f in BUCKET_FIELDS}
        )
    return {k: v or 0 for k, v in sums.items()}


def http_requests(environment, start, end, cohort) -> Measurement:
    totals = request_totals(environment, start, end, cohort)
    return Measurement(float(totals["count"]), totals["count"], f"{totals['count']} requests")


def http_5xx_rate(environment, start, end, cohort) -> Measurement:
    totals = request_totals(environment, start, end, cohort)
    count, errors = totals["count"], totals["errors"]
    if not count:
        return Measurement(None, 0, "no requests")
    rate = errors / count
    return Measurement(rate, count, f"{errors} of {count} requests were 5xx ({rate:.2%})")


def percentile_from_histogram(buckets: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the q-quantile; above the last: 2 x last."""
    total = sum(buckets)
    if not total:
        return None
    target, seen = q * total, 0
    for bound, n in zip((*LATENCY_BOUNDS_MS, LATENCY_BOUNDS_MS[-1] * 2), buckets, strict=True):
        seen += n
        if seen >= target:
            return float(bound)
    return float(LATENCY_BOUNDS_MS[-1] * 2)


def http_p95_latency_ms(environment, start, end, cohort) -> Measurement:
    totals = request_totals(environment, start, end, cohort)
    value = percentile_from_histogram([totals[f] for f in BUCKET_FIELDS], 0.95)
    if value is None:
        return Measurement(None, 0, "no requests")
    return Measurement(value, totals["count"], f"p95 <= {value:.0f} ms on {totals['count']}")


def _events(environment, start, end, cohort):
    event_buffer.flush()  # this process's page views count at once
    events = Event.objects.filter(
        environment=environment,
        occurred_at__gte=start,
        occurred_at__lt=end,
        disposition=Event.Disposition.ACCEPTED,
    )
    if cohort == "test":
        events = events.filter(is_test=True)
    elif cohort == "non_test":
        events = events.filter(is_test=False)
    return events


def event_rate(name, environment, start, end, cohort) -> Measurement:
    with environment_scope(environment):
        count = _events(environment, start, end, cohort).filter(name=name).count()
    minutes = max((end - start).total_seconds() / 60, 1 / 60)
    return Measurement(count / minutes, count, f"{count} {name} in {minutes:.0f} min")


def offer_selection_rate(environment, start, end, cohort) -> Measurement:
    with environment_scope(environment):
        counts = _events(environment, start, end, cohort).aggregate(
            views=Count("id", filter=Q(name="offer_viewed")),
            selections=Count("id", filter=Q(name="offer_selected")),
        )
    views, selections = counts["views"], counts["selections"]
    if not views:
        return Measurement(None, 0, "no offer views")
    return Measurement(selections / views, views, f"{selections} selections of {views} views")


def event_invalid_share(environment, start, end, cohort) -> Measurement:
    event_buffer.flush()
    with environment_scope(environment):
        events = Event.objects.filter(
            environment=environment, received_at__gte=start, received_at__lt=end
        )
        if cohort != "all":
            events = events.filter(is_test=cohort == "test")
        total = events.count()
        bad = events.exclude(plan_status=Event.PlanStatus.PLANNED).count()
    if not total:
        return Measurement(None, 0, "no events")
    return Measurement(bad / total, total, f"{bad} of {total} events unplanned or invalid")


def register() -> None:
    register_metric(
        "http_requests",
        http_requests,
        description="Requests answered.",
        value_range=NON_NEGATIVE,
    )
    register_metric(
        "http_5xx_rate",
        http_5xx_rate,
        description="Share of requests answered with a 5xx.",
        value_range=SHARE,
    )
    register_metric(
        "http_p95_latency_ms",
        http_p95_latency_ms,
        description="95th percentile response time (ms, histogram bucket bound).",
        value_range=NON_NEGATIVE,
    )
    register_metric(
        "offer_selection_rate",
        offer_selection_rate,
        description="Offer selections per offer view.",
        # Not a share: selections and views are counted apart, one can outnumber the other.
        value_range=NON_NEGATIVE,
    )
    register_metric(
        "event_invalid_share",
        event_invalid_share,
        description="Share of received events that are unplanned or invalid.",
        value_range=SHARE,
    )
    for name in ENGAGEMENT_EVENTS:
        register_metric(
            f"event_rate:{name}",
            partial(event_rate, name),
            description=f"{name} events per minute (accepted).",
            value_range=NON_NEGATIVE,
        )
