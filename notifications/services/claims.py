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
    enrollment: str  # re-checked at send time (the member may have left the programme)

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
    member: ClaimedMember | None  # None: someone who is not a member (a loan officer)
    recipient_email: str = ""
    recipient_name: str = ""

    @property
    def member_id(self) -> int | None:
        return self.member.pk if self.member is not None else None

    @property
    def address(self) -> str:
        """Where the email goes (as Delivery.address)."""
        return self.member.email if self.member is not None else self.recipient_email

    def mine(self):
        """This delivery's row while this claim holds it (sending, or sent by it): a
        worker slower than the lease, whose row the sweeper released to another claim,
        finds nothing."""
        return Delivery.objects.filter(
            pk=self.pk,
            state__in=[Delivery.State.SENDING, Delivery.State.SENT],
            claimed_at=self.claimed_at,
        )


def _claimed(row, claimed_at) -> ClaimedDelivery:
    """A ClaimedDelivery from (id, channel, campaign key, template key, category, context,
    attempts, recipient email, recipient name, member id, first name, last name, email,
    enrollment)."""
    context = row[5]
    if isinstance(context, str | bytes):  # jsonb arrives as text (Django's loader)
        context = json.loads(context)
    member = ClaimedMember(*row[9:14]) if row[9] is not None else None
    return ClaimedDelivery(*row[:5], context, row[6], claimed_at, member, row[7], row[8])


_CLAIMED_FIELDS = (
    "pk",
    "channel",
    "campaign_key",
    "template_key",
    "category",
    "context",
    "attempts",
    "recipient_email",
    "recipient_name",
    "member_id",
    "member__first_name",
    "member__last_name",
    "member__email",
    "member__enrollment",
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
            state=Delivery.State.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
        )
    rows = (
        Delivery.objects.filter(pk__in=ids, state=Delivery.State.SENDING, claimed_at=now)
        .order_by("pk")
        .values_list(*_CLAIMED_FIELDS)
    )
    return [_claimed(row, now) for row in rows]


_CLAIM = (
    # Rows another worker holds are skipped, not waited for; the UPDATE returns what
    # sending needs, and the member's name and address come with it: one statement.
    "WITH claimed AS ("
    " UPDATE {delivery} AS d SET state = %s, claimed_at = %s, updated_at = %s,"
    " attempts = d.attempts + 1"
    " WHERE d.id IN (SELECT id FROM {delivery} WHERE environment_id = %s AND id = ANY(%s)"
    "   AND state = %s AND scheduled_at <= %s ORDER BY id FOR UPDATE SKIP LOCKED)"
    " AND d.state = %s"
    " RETURNING d.id, d.channel, d.campaign_key, d.template_key, d.category, d.context,"
    " d.attempts, d.recipient_email, d.recipient_name, d.member_id)"
    " SELECT c.*, m.first_name, m.last_name, m.email, m.enrollment"
    " FROM claimed AS c LEFT JOIN {member} AS m ON m.id = c.member_id ORDER BY c.id"
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
            sql, [sending, now, now, environment.pk, list(delivery_ids), pending, now, pending]
        )
        rows = cursor.fetchall()
    return [_claimed(row, now) for row in rows]
