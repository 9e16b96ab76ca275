"""Warehouse export files (daily JSONL and CSV, partitioned by date) and analytics tables."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from flags.models import AnalyticsSummary, Destination, Event
from flags.services.destinations import SAFETY_LAG, event_payload, filtered

CSV_FIELDS = (
    "id",
    "name",
    "member_id",
    "occurred_at",
    "received_at",
    "source",
    "plan_version",
    "plan_status",
    "properties",
)
DIMENSIONS = ("offer_id", "channel", "flag")


def _day_events(environment, day: date):
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return Event.objects.filter(
        environment=environment,
        occurred_at__gte=start,
        occurred_at__lt=start + timedelta(days=1),
        disposition=Event.Disposition.ACCEPTED,
    ).order_by("pk")


def partition_dir(destination: Destination, day: date) -> Path:
    environment = destination.environment
    return (
        Path(settings.FLAGS_WAREHOUSE_DIR)
        / environment.institution.slug
        / environment.kind
        / destination.name.replace("/", "_")
        / f"date={day.isoformat()}"
    )


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def warehouse_export_day(*, environment, destination: Destination, day: date) -> int:
    """(Re)write the day's partition: events.jsonl and events.csv; returns rows written."""
    rows = []
    for chunk_start in range(0, 10**9, 5000):
        chunk = list(_day_events(environment, day)[chunk_start : chunk_start + 5000])
        rows += [event_payload(e) for e in filtered(destination, chunk)]
        if len(chunk) < 5000:
            break
    folder = partition_dir(destination, day)

    def jsonl(handle):
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")

    def as_csv(handle):
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "properties": json.dumps(row["properties"], sort_keys=True)})

    _atomic_write(folder / "events.jsonl", jsonl)
    _atomic_write(folder / "events.csv", as_csv)
    return len(rows)


def analytics_summarize_day(*, environment, destination: Destination, day: date) -> int:
    """Recompute the day's summary rows (events and members per name and dimension)."""
    totals: dict[tuple[str, str], list] = {}
    for chunk_start in range(0, 10**9, 5000):
        chunk = list(_day_events(environment, day)[chunk_start : chunk_start + 5000])
        for event in filtered(destination, chunk):
            dimension = next(
                (str(event.properties[d])[:100] for d in DIMENSIONS if d in event.properties), ""
            )
            entry = totals.setdefault((event.name, dimension), [0, set()])
            entry[0] += 1
            if event.member_id:
                entry[1].add(event.member_id)
        if len(chunk) < 5000:
            break
    with transaction.atomic():
        AnalyticsSummary.objects.filter(destination=destination, day=day).delete()
        AnalyticsSummary.objects.bulk_create(
            AnalyticsSummary(
                environment=environment,
                destination=destination,
                day=day,
                event_name=name,
                dimension=dimension,
                events=count,
                members=len(members),
            )
            for (name, dimension), (count, members) in totals.items()
        )
    return len(totals)


def _due_days(environment, destination: Destination, now: datetime) -> tuple[list[date], int]:
    """The days to (re)write, and the destination's cursor once they are written.

    Yesterday's and today's partitions, and every other day with an event received since
    the last run: the API and the beacon accept events that occurred up to 30 days ago,
    and such an event belongs to its own day's partition. The cursor (the last event id
    seen) stops before the first event still inside the safety lag, as for webhooks, so an
    event whose id is lower than one already seen but committed later is seen next time.
    """
    today = now.astimezone(UTC).date()
    newer = Event.objects.filter(environment=environment, pk__gt=destination.cursor)
    late = newer.annotate(day=TruncDate("occurred_at", tzinfo=UTC)).values_list("day", flat=True)
    days = sorted({today - timedelta(days=1), today, *late.distinct()})
    first_unsettled = newer.filter(received_at__gt=now - SAFETY_LAG).aggregate(first=Min("pk"))[
        "first"
    ]
    if first_unsettled is not None:
        cursor = first_unsettled - 1
    else:
        cursor = newer.aggregate(last=Max("pk"))["last"] or destination.cursor
    return days, cursor


def exports_run(*, environment, days: list[date] | None = None, now=None) -> dict:
    """Export or summarize days for every enabled file/analytics destination: the given
    days, or (None, the hourly task) the days due since each destination's last run.

    A destination's state is the run's as a whole: failing, with the failed days' errors,
    when any day could not be written (the days written after it do not hide that), and
    active again once a run writes every day it had to, the failed ones included.
    """
    now = now or timezone.now()
    done = {}
    for destination in Destination.objects.filter(
        environment=environment,
        enabled=True,
        kind__in=[Destination.Kind.WAREHOUSE, Destination.Kind.ANALYTICS],
    ).select_related("environment__institution"):
        cursor = None
        if days is None:
            wanted, cursor = _due_days(environment, destination, now)
        else:
            wanted = days
        errors = []
        for day in wanted:
            try:
                if destination.kind == Destination.Kind.WAREHOUSE:
                    n = warehouse_export_day(
                        environment=environment, destination=destination, day=day
                    )
                else:
                    n = analytics_summarize_day(
                        environment=environment, destination=destination, day=day
                    )
            except OSError as exc:
                errors.append(f"{day}: {exc}")
                continue
            done[f"{destination.name}:{day}"] = n
        outcome = {}
        if len(errors) < len(wanted):
            outcome["last_success_at"] = timezone.now()
        if errors:  # a failed day is due again next time: the cursor stays
            outcome.update(state=Destination.State.FAILING, last_error="; ".join(errors)[:500])
        else:
            outcome.update(state=Destination.State.ACTIVE, last_error="")
            if cursor is not None:
                outcome["cursor"] = cursor
        Destination.objects.filter(pk=destination.pk).update(**outcome)
    return done
