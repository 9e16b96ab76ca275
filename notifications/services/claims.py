"""Claims: a batch of due pending deliveries moved to sending atomically, with what
sending them needs; a claim's writes hold only while the row still carries it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Delivery


@dataclass(frozen=True, slots=True)
class ClaimedMember:
    pk: int
    first_name: str
    last_name: str
    email: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()  # as Member.full_name


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this worker claimed (state "sending"), with what sending it needs."""

    pk: int
    channel: str
    campaign_key: str
    template_key: str
    category: str
    context: dict
    attempts: int
    claimed_at: datetime
    member: ClaimedMember

    @property
    def member_id(self) -> int:
        return self.member.pk

    def mine(self):
        """This delivery's row while this claim holds it (sending, or sent by it): a
        worker slower than the lease, whose row the sweeper released to another claim,
        finds nothing."""
        return Delivery.objects.filter(
            pk=self.pk,
            state__in=[Delivery.State.SENDING, Delivery.State.SENT],
            claimed_at=self.claimed_at,
        )


_CLAIMED_FIELDS = (
    "pk",
    "channel",
    "campaign_key",
    "template_key",
    "category",
    "context",
    "attempts",
    "member_id",
    "member__first_name",
    "member__last_name",
    "member__email",
)


def deliveries_claim(*, environment, delivery_ids: list[int]) -> list[ClaimedDelivery]:
    """Atomically move due pending deliveries to sending; only the claimer may send them.

    A redelivered task, a sweeper re-dispatch or a second worker finds them no longer
    pending and claims nothing: no delivery is sent twice.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_postgresql(environment, delivery_ids, now)
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(
                environment=environment,
                pk__in=delivery_ids,
                state=Delivery.State.PENDING,
                scheduled_at__lte=now,
            ).values_list("pk", flat=True)
        )
        # The state condition again: the UPDATE itself is the claim (SQLite has no row
        # locks, but its IMMEDIATE transactions serialize writers).
        Delivery.objects.filter(pk__in=ids, state=Delivery.State.PENDING).update(
            state=Delivery.State.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    rows = (
        Delivery.objects.filter(pk__in=ids, state=Delivery.State.SENDING, claimed_at=now)
        .order_by("pk")
        .values_list(*_CLAIMED_FIELDS)
    )
    return [ClaimedDelivery(*row[:7], now, ClaimedMember(*row[7:])) for row in rows]


_CLAIM = (
    # Rows another worker holds are skipped, not waited for; the UPDATE returns what
    # sending needs, the member's name and address included: one statement per batch.
    "UPDATE {delivery} AS d SET state = %s, claimed_at = %s, attempts = d.attempts + 1"
    " FROM {member} AS m"
    " WHERE d.id IN (SELECT id FROM {delivery} WHERE environment_id = %s AND id = ANY(%s)"
    "   AND state = %s AND scheduled_at <= %s ORDER BY id FOR UPDATE SKIP LOCKED)"
    " AND d.state = %s AND m.id = d.member_id"
    " RETURNING d.id, d.channel, d.campaign_key, d.template_key, d.category, d.context,"
    " d.attempts, m.id, m.first_name, m.last_name, m.email"
)


def _claim_postgresql(environment, delivery_ids, now) -> list[ClaimedDelivery]:
    from homes.models import Member

    quote = connection.ops.quote_name
    sql = _CLAIM.format(
        delivery=quote(Delivery._meta.db_table), member=quote(Member._meta.db_table)
    )
    pending, sending = Delivery.State.PENDING, Delivery.State.SENDING
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql, [sending, now, environment.pk, list(delivery_ids), pending, now, pending]
        )
        rows = cursor.fetchall()
    claimed = []
    for row in sorted(rows):
        context = row[5]
        if isinstance(context, str | bytes):  # jsonb arrives as text (Django's loader)
            context = json.loads(context)
        claimed.append(ClaimedDelivery(*row[:5], context, row[6], now, ClaimedMember(*row[7:])))
    return claimed
