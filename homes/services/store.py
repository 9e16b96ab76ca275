"""Writing a batch of homes: new valuations, the homes' stored figures, their offer matches.

On PostgreSQL a large batch is streamed with COPY into temporary tables and applied with
one INSERT … ON CONFLICT and one UPDATE … FROM, and the matches are replaced with one
DELETE … RETURNING and one COPY: a handful of statements per thousands of homes. Other
databases (SQLite, the embedded default) and small batches use the ORM.

A member's homes, with their figures, are part of the member the API's incremental sync
sends: the owners' `updated_at` moves with every batch (one UPDATE for the batch).
"""

from __future__ import annotations

import zlib
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from homes.models import Member, OfferMatch, Property, Valuation
from homes.services.bulk import fast_bulk_update

#: Below this many homes the ORM path is as fast, and simpler to follow in a query log.
COPY_MIN_ROWS = 50


class ValuationRow(NamedTuple):
    property_id: int
    provider: str
    value: Decimal
    low: Decimal
    high: Decimal
    confidence: int
    fsd: Decimal
    as_of: date


class MatchRow(NamedTuple):
    member_id: int
    property_id: int
    product_id: int
    rank: int
    benefit_kind: str
    benefit: Decimal
    score: Decimal
    amount: Decimal | None
    rate: Decimal | None
    monthly_payment: Decimal | None
    computed_at: datetime


VALUATION_UPDATE = ("value", "low", "high", "confidence", "fsd")
VALUATION_KEY = ("environment", "property", "provider", "as_of")


def batch_store(
    *,
    environment,
    rows: list,
    fields: list[str],
    valuations: list[ValuationRow],
    matches: list[MatchRow],
) -> set[tuple[int, int]]:
    """Store a batch (the caller holds the transaction): mark the owners changed, upsert the
    valuations, write the rows' `fields`, replace the rows' matches. Returns the (property,
    product) pairs that were matched before."""
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return _store_copy(environment, rows, fields, valuations, matches)
    return _store_orm(environment, rows, fields, valuations, matches)


def _owners(rows) -> list[int]:
    # Sorted: members are locked in id order, before the homes, as a sync locks them.
    return sorted({row.member_id for row in rows if row.member_id is not None})


def _store_orm(environment, rows, fields, valuations, matches) -> set[tuple[int, int]]:
    owners = _owners(rows)
    if owners:
        Member.objects.filter(environment=environment, pk__in=owners).update(
            updated_at=timezone.now()
        )
    Valuation.objects.bulk_create(
        [Valuation(environment=environment, **v._asdict()) for v in valuations],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=list(VALUATION_KEY),
        update_fields=list(VALUATION_UPDATE),
    )
    fast_bulk_update(rows, fields, model=Property)
    existing = OfferMatch.objects.filter(
        environment=environment, property_id__in=[row.pk for row in rows]
    )
    before = set(existing.values_list("property_id", "product_id"))
    existing.delete()
    OfferMatch.objects.bulk_create(
        [OfferMatch(environment=environment, **m._asdict()) for m in matches], batch_size=1000
    )
    return before


def int_array(ids) -> str:
    """A PostgreSQL array literal of integers: one parameter however many ids (adapting a
    list element by element costs more than the statement)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def _columns(model, names) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


def _stage(cursor, name: str, table: str, columns: list[str]) -> str:
    """An empty temporary table shaped like `columns` of `table`, dropped at commit; returns
    its name. The name carries the columns: a table made earlier in the same transaction
    for other columns (a recompute, then a revaluation) is another table, not reused with
    the wrong shape."""
    name = f"{name}_{zlib.crc32(','.join(columns).encode()):08x}"
    cols = ", ".join(columns)
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {cols} FROM {table} WITH NO DATA"
    )
    cursor.execute(f"TRUNCATE {name}")
    return name


def _store_copy(environment, rows, fields, valuations, matches) -> set[tuple[int, int]]:
    # Only table and column names from the models are interpolated; values travel by COPY
    # or as parameters.
    env_id = environment.pk
    now = timezone.now()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        owners = _owners(rows)
        if owners:
            cursor.execute(
                f"UPDATE {Member._meta.db_table} SET updated_at = %s "  # noqa: S608
                "WHERE environment_id = %s AND id = ANY(%s::bigint[])",
                [now, env_id, int_array(owners)],
            )
        if valuations:
            table = Valuation._meta.db_table
            names = ["environment", *ValuationRow._fields, "created_at"]
            cols = _columns(Valuation, names)
            stage = _stage(cursor, "homes_stage_valuation", table, cols)
            with raw.copy(f"COPY {stage} ({', '.join(cols)}) FROM STDIN") as copy:
                for v in valuations:
                    copy.write_row((env_id, *v, now))
            key = ", ".join(_columns(Valuation, VALUATION_KEY))
            updates = ", ".join(
                f"{c} = EXCLUDED.{c}" for c in _columns(Valuation, VALUATION_UPDATE)
            )
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) "  # noqa: S608
                f"SELECT {', '.join(cols)} FROM {stage} "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
            )
        table = Property._meta.db_table
        cols = _columns(Property, fields)
        stage = _stage(cursor, "homes_stage_property", table, ["id", *cols])
        with raw.copy(f"COPY {stage} (id, {', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row.pk, *(getattr(row, name) for name in fields)))
        sets = ", ".join(f"{c} = s.{c}" for c in cols)
        cursor.execute(
            f"UPDATE {table} AS p SET {sets} FROM {stage} AS s "  # noqa: S608
            "WHERE p.id = s.id AND p.environment_id = %s",
            [env_id],
        )
        table = OfferMatch._meta.db_table
        cursor.execute(
            f"DELETE FROM {table} WHERE environment_id = %s "  # noqa: S608
            "AND property_id = ANY(%s::bigint[]) RETURNING property_id, product_id",
            [env_id, int_array([row.pk for row in rows])],
        )
        before = set(cursor.fetchall())
        cols = _columns(OfferMatch, ["environment", *MatchRow._fields])
        with raw.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for m in matches:
                copy.write_row((env_id, *m))
    return before
