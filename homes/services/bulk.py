"""Bulk UPDATE of many rows with different values, much faster than QuerySet.bulk_update.

Django's bulk_update builds one CASE WHEN per field and row, which costs far more to
compile than to run; an executemany of a plain parameterized UPDATE is pipelined by
psycopg 3 and is native to SQLite.
"""

from __future__ import annotations

from django.db import connection


def fast_bulk_update(objs: list, fields: list[str], *, model=None) -> None:
    """UPDATE each object's `fields` by primary key (the caller holds the transaction).

    `objs` are model instances, or any objects with `pk` and the fields' attributes when
    `model` names the table.
    """
    if not objs:
        return
    model = model or type(objs[0])
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    # Only quoted column names from the model are interpolated; values are parameters.
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


# Values of these field types go to the driver as they are (psycopg adapts them natively).
_NATIVE = (
    "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "DateField",
    "DateTimeField", "DecimalField", "EmailField", "FloatField", "ForeignKey", "IntegerField",
    "PositiveIntegerField", "PositiveSmallIntegerField", "SmallIntegerField", "TextField",
)  # fmt: skip


def _converter(field):
    if connection.vendor == "postgresql" and field.get_internal_type() in _NATIVE:
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def bulk_insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert rows given as {attname: value} (other fields get their defaults, auto_now
    fields the time of the call) and return their new ids, in order.

    On PostgreSQL the ids are drawn from the table's sequence and the rows COPYed, several
    times faster than INSERT through model instances; elsewhere it is bulk_create.
    """
    if not rows:
        return []
    from django.utils import timezone

    now = timezone.now()
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    defaults = {}
    per_row = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            defaults[f.attname] = now
        elif f.has_default() and callable(f.default) and f.default is not timezone.now:
            per_row.append(f)  # e.g. a random token: a fresh one for every row
        else:
            defaults[f.attname] = now if f.default is timezone.now else f.get_default()
    if connection.vendor != "postgresql":
        objs = []
        for row in rows:
            values = {**defaults, **{f.attname: f.get_default() for f in per_row}, **row}
            objs.append(model(**values))
        return [obj.pk for obj in model.objects.bulk_create(objs, batch_size=1000)]
    quote = connection.ops.quote_name
    table = meta.db_table
    columns = ", ".join(quote(c) for c in [meta.pk.column, *(f.column for f in fields)])
    converters = [_converter(f) for f in fields]
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, meta.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        # Only quoted names from the model are interpolated; values are COPY data.
        with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                values = [pk]
                for f, convert in zip(fields, converters, strict=True):
                    if f.attname in row:
                        value = row[f.attname]
                    elif f in per_row:
                        value = f.get_default()
                    else:
                        value = defaults[f.attname]
                    values.append(value if convert is None else convert(value))
                copy.write_row(values)
    return ids


def bulk_update_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """UPDATE `fields` of many rows given as (value of each field …, pk) tuples.

    On PostgreSQL it is one statement joining the rows as arrays (unnest), not a statement
    per row.
    """
    if not rows:
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    converters = [_converter(f) for f in columns]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql" and all(c is None for c in converters):
        names = [f"c{i}" for i in range(len(columns))]
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in [*columns, meta.pk])
        sets = ", ".join(f"{quote(f.column)} = v.{n}" for f, n in zip(columns, names, strict=True))
        # Only names from the model and their database types are interpolated.
        sql = (
            f"UPDATE {quote(meta.db_table)} AS t SET {sets} "  # noqa: S608
            f"FROM unnest({arrays}) AS v({', '.join(names)}, pk) "
            f"WHERE t.{quote(meta.pk.column)} = v.pk"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
        return
    sets = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    params = [
        [v if c is None else c(v) for v, c in zip(row[:-1], converters, strict=True)] + [row[-1]]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
