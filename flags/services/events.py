"""Recording events: validated against the data plan, `is_test` from the member, in bulk."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from flags import plans
from flags.models import Event
from flags.services import event_buffer

MAX_BATCH = 1000
MAX_PROPERTIES_BYTES = 8 * 1024
NAME_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,99}$")
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=30)


def _classify(environment_id: int, plan: plans.ActivePlan, name: str, properties: dict):
    """(plan_status, violations, disposition) of one event under the plan in force."""
    if plan.version is None:
        return Event.PlanStatus.UNPLANNED, [], Event.Disposition.ACCEPTED
    validator = plans.validators(environment_id, plan).get(name)
    if validator is None:
        disposition = (
            Event.Disposition.QUARANTINED
            if plan.unplanned == "quarantine"
            else Event.Disposition.ACCEPTED
        )
        return (
            Event.PlanStatus.UNPLANNED,
            [f"{name}: not in data plan v{plan.version}"],
            disposition,
        )
    violations = plans.check(validator, properties)
    if not violations:
        return Event.PlanStatus.PLANNED, [], Event.Disposition.ACCEPTED
    disposition = (
        Event.Disposition.QUARANTINED
        if plan.invalid == "quarantine"
        else Event.Disposition.ACCEPTED
    )
    return Event.PlanStatus.INVALID, violations, disposition


def _member_of(row: dict) -> tuple[int | None, bool]:
    member = row.get("member")
    if member is not None:
        return member.pk, bool(member.is_test)
    return row.get("member_id"), bool(row.get("is_test"))


def event_record_many(*, environment, rows: list[dict], source: str) -> list[Event]:
    """Store already-checked rows: {name, member or member_id+is_test, properties, occurred_at}."""
    plan = plans.active_plan(environment)
    now = timezone.now()
    events = []
    for row in rows:
        member_id, is_test = _member_of(row)
        properties = row.get("properties") or {}
        status, violations, disposition = _classify(environment.pk, plan, row["name"], properties)
        events.append(
            Event(
                environment=environment,
                name=row["name"],
                member_id=member_id,
                is_test=is_test,
                properties=properties,
                occurred_at=row.get("occurred_at") or now,
                received_at=now,
                source=source,
                plan_version=plan.version,
                plan_status=status,
                violations=violations,
                disposition=disposition,
            )
        )
    return _insert(events)


COPY_COLUMNS = (
    "id",
    "environment_id",
    "name",
    "member_id",
    "properties",
    "occurred_at",
    "received_at",
    "source",
    "is_test",
    "plan_version",
    "plan_status",
    "violations",
    "disposition",
)


def _column_values(environment, plan: plans.ActivePlan, row: dict, source: str, now) -> tuple:
    """One row's values in COPY_COLUMNS order after the id, classified under the plan:
    what COPY and the single no-flush-wait INSERT write, without a model instance."""
    member_id, is_test = _member_of(row)
    properties = row.get("properties") or {}
    status, violations, disposition = _classify(environment.pk, plan, row["name"], properties)
    return (
        environment.pk,
        row["name"],
        member_id,
        json.dumps(properties),
        row.get("occurred_at") or now,
        now,
        source,
        is_test,
        plan.version,
        status,
        json.dumps(violations),
        disposition,
    )


def event_record_bulk(*, environment, rows: list[dict], source: str) -> int:
    """Store many rows as event_record_many does, without handing the events back: on
    PostgreSQL straight from the rows by COPY (no model instance per event), for the
    thousands of server events of a batch job. Returns how many were stored."""
    if connection.vendor != "postgresql" or len(rows) < 50:
        return len(event_record_many(environment=environment, rows=rows, source=source))
    plan = plans.active_plan(environment)
    now = timezone.now()
    copy_rows([_column_values(environment, plan, row, source, now) for row in rows])
    return len(rows)


def copy_rows(values: list[tuple], *, with_ids: bool = False, wait_for_flush: bool = True) -> None:
    """Write rows of column values (_column_values, led by the id when with_ids) by one
    COPY, in one transaction (PostgreSQL); without ids they come from the sequence. With
    wait_for_flush=False the commit does not wait for the WAL to reach the disk (SET LOCAL:
    this transaction only)."""
    columns = ", ".join(COPY_COLUMNS if with_ids else COPY_COLUMNS[1:])
    table = Event._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if not wait_for_flush:
            cursor.execute("SET LOCAL synchronous_commit = off")
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)


@functools.cache
def _no_flush_wait_insert() -> str:
    """The statement of _insert_without_flush_wait; its parameters are COPY_COLUMNS[1:]."""
    by_column = {f.column: f for f in Event._meta.concrete_fields}
    fields = [by_column[column] for column in COPY_COLUMNS[1:]]
    quote = connection.ops.quote_name
    # Names and types from the model, values as parameters.
    return (
        "WITH no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true)) "  # noqa: S608
        f"INSERT INTO {quote(Event._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(f'%s::{f.db_type(connection)}' for f in fields)} "
        "FROM no_flush_wait"
    )


def _insert_without_flush_wait(values: tuple) -> None:
    """One INSERT on PostgreSQL that commits without waiting for its WAL to reach the disk.

    The setting is made inside the statement (set_config(..., is_local => true) in a CTE the
    INSERT reads from), so it holds for this statement's own transaction only, and costs
    no round trip of its own: a transaction around the INSERT would need three more
    (BEGIN, SET LOCAL, COMMIT). The explicit casts type the values as the columns are
    typed (INSERT ... SELECT does not infer them as INSERT ... VALUES does).

    This writes a page view when views are not buffered (event_buffer.interval() is 0),
    so the row's values are made as COPY rows are (_column_values): no model instance, no
    per-field preparation.
    """
    with connection.cursor() as cursor:
        cursor.execute(_no_flush_wait_insert(), values)


_JSON_COLUMNS = frozenset({"properties", "violations"})


def _copy_values(event: Event) -> tuple:
    """An event instance's values in COPY_COLUMNS order, id first (the columns are named
    as the model's attributes)."""
    return tuple(
        json.dumps(getattr(event, column)) if column in _JSON_COLUMNS else getattr(event, column)
        for column in COPY_COLUMNS
    )


def _insert(events: list[Event]) -> list[Event]:
    """Insert events; on PostgreSQL large batches use COPY with ids drawn from the sequence
    (several times faster than INSERT for a thousand JSON rows, and the ids come back)."""
    if len(events) == 1:
        # One event (a page view): a single INSERT, without the transaction bulk_create
        # wraps around its batches (two more round trips on every page).
        events[0].save(force_insert=True)
        return events
    if connection.vendor != "postgresql" or len(events) < 50:
        return Event.objects.bulk_create(events, batch_size=500)
    with connection.cursor() as cursor:
        # Sequence values are drawn outside any transaction's undo: a failed COPY leaves
        # a gap in the ids, as it did when both shared one transaction.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Event._meta.db_table, len(events)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for event, pk in zip(events, ids, strict=True):
        event.pk = pk
    copy_rows([_copy_values(event) for event in events], with_ids=True)
    for event in events:
        event._state.adding = False
        event._state.db = "default"
    return events


def _row_of(event) -> dict:
    """An emitted event (institutions.events.MemberEvent) as a row to record."""
    return {
        "name": event.name,
        "member_id": event.member_id,
        "is_test": event.is_test,
        "properties": event.properties,
        "occurred_at": event.occurred_at,
    }


def record_member_event(event) -> None:
    """The sink for institutions.events.emit: one server event (is_test set by emit)."""
    from institutions.models import Environment
    from institutions.tenancy import current_environment, environment_scope

    environment = current_environment()
    if environment is None or environment.pk != event.environment_id:
        environment = Environment.objects.select_related("institution").get(pk=event.environment_id)
    source = event.source if event.source in Event.Source.values else "server"
    row = _row_of(event)
    with environment_scope(environment):
        if (
            not event.sync_commit
            and connection.vendor == "postgresql"
            # Inside a transaction the commit is the caller's, and so is its durability.
            and not connection.in_atomic_block
        ):
            plan = plans.active_plan(environment)
            values = _column_values(environment, plan, row, source, timezone.now())
            if event_buffer.interval() > 0:
                event_buffer.add(values)  # written within the interval: see event_buffer
            else:
                _insert_without_flush_wait(values)
        else:
            event_record_many(environment=environment, rows=[row], source=source)


def record_member_events(batch) -> None:
    """The batch form of record_member_event: one bulk write per environment and source
    (the events of a refresh of thousands of homes)."""
    from institutions.models import Environment
    from institutions.tenancy import current_environment, environment_scope

    groups: dict[tuple[int, str], list] = {}
    sources = set(Event.Source.values)
    for event in batch:
        source = event.source if event.source in sources else "server"
        groups.setdefault((event.environment_id, source), []).append(event)
    for (environment_id, source), group in groups.items():
        environment = current_environment()
        if environment is None or environment.pk != environment_id:
            environment = Environment.objects.select_related("institution").get(pk=environment_id)
        with environment_scope(environment):
            event_record_bulk(
                environment=environment,
                rows=[_row_of(e) for e in group],
                source=source,
            )


@dataclass
class RowResult:
    index: int
    status: str  # "accepted" | "quarantined" | "rejected"
    event_id: int | None = None
    plan_status: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    rows: list[RowResult]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def accepted(self) -> int:
        return self.count("accepted")

    @property
    def quarantined(self) -> int:
        return self.count("quarantined")

    @property
    def rejected(self) -> list[RowResult]:
        return [r for r in self.rows if r.status == "rejected"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "rejected": len(self.rejected),
            "rows": [r.__dict__ for r in self.rows],
        }


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _is_external_id(value) -> bool:
    """A string the database can compare (no NUL, no lone surrogate), of a stored length."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 100
        and "\x00" not in value
        and _storable_json(value)
    )


def _storable_json(value) -> bool:
    """PostgreSQL's jsonb refuses NaN, Infinity and unpaired surrogates: so do we."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


#: The fields an event row may have (flags.api.serializers.EventInSerializer). `is_test` is
#: read from the member, never from the row, but a client may send it: the API has always
#: said so, and taken rows that carry it.
ROW_FIELDS = frozenset(
    {"name", "member_id", "member_external_id", "properties", "occurred_at", "is_test"}
)


def _parse_row(index: int, raw, members_by_id, members_by_ext, now: datetime):
    """A checked row dict, or a list of errors naming what is wrong with it."""
    if not isinstance(raw, dict):
        return ["each event must be a JSON object"]
    # A misspelt field is refused, not dropped: `member` for `member_external_id` would
    # store the event without its member, `occured_at` stamp it with the time received.
    unknown = sorted(str(key) for key in set(raw) - ROW_FIELDS)
    errors = [f"{name[:100]}: Unknown field." for name in unknown[:20]]
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append("name: required; lowercase letters, digits and _ . : - (at most 100)")
    properties = raw.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors.append("properties: must be a JSON object")
    else:
        encoded = json.dumps(properties, default=str)
        if len(encoded) > MAX_PROPERTIES_BYTES:
            errors.append(f"properties: larger than {MAX_PROPERTIES_BYTES} bytes")
        elif "\\u0000" in encoded:  # PostgreSQL's jsonb cannot store NUL characters
            errors.append("properties: NUL characters are not allowed")
        elif not _storable_json(properties):
            errors.append("properties: plain JSON only (no NaN, Infinity or lone surrogates)")
    occurred = raw.get("occurred_at")
    occurred_at = now
    if occurred is not None:
        try:
            parsed = parse_datetime(occurred) if isinstance(occurred, str) else None
        except ValueError:  # well formed but not a time, e.g. month 13
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            errors.append("occurred_at: an ISO 8601 time with a time zone")
        elif not (now - MAX_PAST <= parsed <= now + MAX_FUTURE):
            errors.append("occurred_at: more than 30 days ago or in the future")
        else:
            occurred_at = parsed.astimezone(UTC)  # the database takes offsets up to 15:59 only
    member = None
    if raw.get("member_id") is not None:
        member = members_by_id.get(raw["member_id"]) if _is_id(raw["member_id"]) else None
        if member is None:
            errors.append(f"member_id: no member {raw['member_id']!r} here")
    if raw.get("member_external_id") is not None:
        external_id = raw["member_external_id"]
        by_ext = members_by_ext.get(external_id) if _is_external_id(external_id) else None
        if by_ext is None:
            errors.append(f"member_external_id: no member {raw['member_external_id']!r} here")
        elif raw.get("member_id") is None:
            member = by_ext
        elif member is not None and member.pk != by_ext.pk:
            # Both given: they must agree, or the event would land on one of two members.
            errors.append("member_external_id: names another member than member_id")
    if errors:
        return errors
    return {"name": name, "member": member, "properties": properties, "occurred_at": occurred_at}


def events_ingest(*, environment, events: list, source: str = "api") -> IngestResult:
    """Ingest a batch (at most 1,000): good rows are stored, bad rows are named, not stored.

    `is_test` comes from the member found here, whatever the client says.
    """
    from homes.models import Member

    if not isinstance(events, list):
        raise ValidationError({"events": "Send a JSON array of events."})
    if len(events) > MAX_BATCH:
        raise ValidationError({"events": f"At most {MAX_BATCH:,} events per batch."})
    if source not in Event.Source.values:
        raise ValidationError({"source": f"Unknown source {source!r}."})
    rows = [e for e in events if isinstance(e, dict)]
    ids = {e.get("member_id") for e in rows if _is_id(e.get("member_id"))}
    exts = {e["member_external_id"] for e in rows if _is_external_id(e.get("member_external_id"))}
    # An erased member is unknown here, as everywhere in the API: nothing new is linked to
    # the tombstone that erasure left.
    members = Member.objects.filter(environment=environment, erased_at__isnull=True)
    by_id = {}
    if ids:
        by_id = {m.pk: m for m in members.filter(pk__in=ids).only("pk", "is_test")}
    by_ext = {}
    if exts:
        by_ext = {
            m.external_id: m
            for m in members.filter(external_id__in=exts).only("pk", "is_test", "external_id")
        }
    now = timezone.now()
    results: list[RowResult] = []
    good: list[tuple[int, dict]] = []
    for index, raw in enumerate(events):
        parsed = _parse_row(index, raw, by_id, by_ext, now)
        if isinstance(parsed, list):
            results.append(RowResult(index, "rejected", errors=parsed))
        else:
            results.append(RowResult(index, "accepted"))
            good.append((index, parsed))
    with transaction.atomic():
        stored = event_record_many(
            environment=environment, rows=[row for _, row in good], source=source
        )
    for (index, _), event in zip(good, stored, strict=True):
        result = results[index]
        result.event_id = event.pk
        result.plan_status = event.plan_status
        result.errors = list(event.violations)
        if event.disposition == Event.Disposition.QUARANTINED:
            result.status = "quarantined"
    return IngestResult(results)
