"""Fast inserts of many rows (a staging fill writes millions of them).

`QuerySet.bulk_create` compiles SQL for every value of every row, which costs several
times more than the insert itself. On PostgreSQL rows go in with COPY (ids drawn from the
table's sequence first when they are needed); elsewhere with an executemany of one plain
INSERT (rows whose ids are needed afterwards use bulk_create there, which reads them back).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

BATCH = 2000

# Fields whose Python value PostgreSQL's driver takes as it is: their own preparation
# (which costs more than the COPY of the value) is skipped there. Exact classes only: a
# subclass may prepare its value (an encrypted field encrypts it).
_PLAIN = {
    models.BigAutoField, models.AutoField, models.BigIntegerField, models.IntegerField,
    models.SmallIntegerField, models.PositiveIntegerField, models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField, models.FloatField, models.DecimalField, models.BooleanField,
    models.CharField, models.TextField, models.EmailField, models.DateField,
    models.DateTimeField, models.ForeignKey,
}  # fmt: skip


def _is_auto(f: models.Field) -> bool:
    return getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)


def _preparer(f: models.Field, connection):
    """None when the value goes to the database as it is, else the field's preparation."""
    if connection.vendor == "postgresql" and type(f) in _PLAIN and not _is_auto(f):
        return None
    return f.get_db_prep_save


def _write(model, fields: list[models.Field], rows: Iterable[list], connection) -> None:
    meta, quote = model._meta, connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(fields))
        # Only the model's own quoted table and column names are interpolated.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def _next_ids(model, count: int, connection) -> list[int]:
    """Draw `count` ids from a PostgreSQL table's sequence."""
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _connection():
    # The connection itself, not the thread-local proxy: it is read for every value.
    return connections[DEFAULT_DB_ALIAS]


def insert(objs: list[models.Model], *, need_ids: bool = False) -> None:
    """Insert unsaved instances of one model (the caller holds the transaction); with
    `need_ids` their primary keys are set afterwards."""
    if not objs:
        return
    model, connection = type(objs[0]), _connection()
    meta = model._meta
    postgres = connection.vendor == "postgresql"
    if need_ids and not postgres:
        model._base_manager.bulk_create(objs, batch_size=500)
    else:
        if need_ids:
            for obj, pk in zip(objs, _next_ids(model, len(objs), connection), strict=True):
                obj.pk = pk
        fields = [f for f in meta.concrete_fields if need_ids or not f.primary_key]
        steps = [(f, _preparer(f, connection)) for f in fields]

        def value(obj, f, prep):
            return (
                getattr(obj, f.attname) if prep is None else prep(f.pre_save(obj, True), connection)
            )

        def rows():
            for obj in objs:
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
                yield [value(obj, f, prep) for f, prep in steps]

        _write(model, fields, rows(), connection)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS


def insert_values(
    model: type[models.Model], names: list[str], rows: list[list], *, need_ids: bool = False
) -> list[int]:
    """Insert rows given as lists of values for the fields `names` (no model instances: the
    cheapest way for millions of rows); with `need_ids`, returns the new primary keys in
    order. Other fields get their default, or now for automatic timestamps; so a model
    with a per-row default (a random token) needs it named."""
    if not rows:
        return []
    connection = _connection()
    meta = model._meta
    given = [meta.get_field(name) for name in names]
    others = [f for f in meta.concrete_fields if not f.primary_key and f.name not in names]
    now = timezone.now()
    constants = [
        f.get_db_prep_save(now if _is_auto(f) else f.get_default(), connection) for f in others
    ]
    steps = [(f, _preparer(f, connection)) for f in given]
    fields = given + others

    def prepared(row) -> list:
        values = [
            v if prep is None else prep(v, connection)
            for (_, prep), v in zip(steps, row, strict=True)
        ]
        return values + constants

    if not need_ids:
        _write(model, fields, (prepared(row) for row in rows), connection)
        return []
    if connection.vendor == "postgresql":
        ids = _next_ids(model, len(rows), connection)
        _write(
            model,
            [meta.pk, *fields],
            ([pk, *prepared(row)] for pk, row in zip(ids, rows, strict=True)),
            connection,
        )
        return ids
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
    ids = []
    with connection.cursor() as cursor:
        for row in rows:
            cursor.execute(sql, prepared(row))
            ids.append(cursor.lastrowid)
    return ids
