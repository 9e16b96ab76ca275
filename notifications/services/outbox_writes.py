"""How the outbox writes a plan's rows: bulk_create anywhere; on PostgreSQL, COPY into a
temporary table and one INSERT ... ON CONFLICT DO NOTHING RETURNING from there.

Each returns (ids of the due rows it wrote, marked dispatched; whether every row was new).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection

from notifications.models import Delivery


def rows_write_bulk(environment, plan, rows, now) -> tuple[list[int], bool]:
    """bulk_create; the due rows are marked dispatched afterwards (complete=False)."""
    size = getattr(settings, "NOTIFICATIONS_WRITE_BATCH", 2000)
    objs = [
        Delivery(
            environment=environment,
            campaign_key=plan.campaign_key,
            template_key=plan.template_key,
            category=plan.category,
            member_id=r.member_id,
            channel=r.channel,
            state=r.state,
            reason=r.reason,
            context=r.context,
            scheduled_at=r.scheduled_at,
        )
        for r in rows
    ]
    for i in range(0, len(objs), size):
        Delivery.objects.bulk_create(objs[i : i + size], ignore_conflicts=True)
    return [], False


_COPY_COLUMNS = (
    "member_id",
    "channel",
    "state",
    "reason",
    "context",
    "scheduled_at",
    "dispatched_at",
)
_INSERT_FROM_LOAD = (
    "INSERT INTO {table} (environment_id, campaign_key, template_key, category, attempts,"
    " last_error, provider_message_id, sink, recipient_email, recipient_name, created_at,"
    " updated_at, {columns})"
    " SELECT %s, %s, %s, %s, 0, '', '', '', '', '', %s, %s, {columns}"
    " FROM delivery_load ORDER BY member_id, channel"  # one lock order for concurrent writers
    " ON CONFLICT DO NOTHING RETURNING id, dispatched_at IS NOT NULL"
)
_json = json.JSONEncoder().encode  # as JSONField writes (no custom encoder)


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
    return text


def rows_write_copy(environment, plan, rows, now) -> tuple[list[int], bool]:
    """PostgreSQL: COPY the rows into a temporary table and insert them from there in one
    statement that skips existing ones and returns what it wrote; due rows are written
    already dispatched (their send tasks are queued on commit)."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    lines = []
    for r in rows:
        due = r.state == Delivery.State.PENDING and r.scheduled_at <= now
        values = (
            r.member_id,
            r.channel,
            r.state,
            r.reason,
            _json(r.context),
            r.scheduled_at.isoformat(),
            now.isoformat() if due else None,
        )
        lines.append("\t".join(map(_copy_text, values)))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE delivery_load (member_id bigint, channel text, state text,"
            " reason text, context jsonb, scheduled_at timestamptz, dispatched_at timestamptz)"
            " ON COMMIT DROP"
        )
        with cursor.cursor.copy(
            f"COPY delivery_load ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
        ) as copy:
            copy.write("\n".join(lines) + "\n")
        cursor.execute(
            _INSERT_FROM_LOAD.format(table=table, columns=", ".join(_COPY_COLUMNS)),
            [environment.pk, plan.campaign_key, plan.template_key, plan.category, now, now],
        )
        written = cursor.fetchall()
        cursor.execute("DROP TABLE delivery_load")
    return [pk for pk, due in written if due], len(written) == len(rows)
