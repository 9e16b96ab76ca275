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
