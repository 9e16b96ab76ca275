"""Send claimed deliveries: one batch, one connection per route, every outcome recorded.

A delivery is recorded sent only once its own message was handed over, and each failure is
recorded on its own row with its reason; nothing one delivery does stops the others:

- SMTP: recorded in a transaction opened just before the final "." of DATA (the server's
  commit point) and committed just after it, so a worker killed before the "." leaves the
  row "sending" (its transaction rolls back) and the sweeper sends it once; the window
  left is the instant between the two writes (see _sent_around_commit_point).
- A provider API (django-anymail, any other backend): recorded after the provider accepted
  the message, one row at a time, from the provider's answer for that recipient. Each
  message is handed over only if its row is still this claim's (as is each push): a
  worker slower than its lease, whose row the sweeper gave to another claim, skips it.
- A local sink (files, the console, memory: development and staging): written first, then
  the batch's writes are recorded in one UPDATE when the route is done — including when
  it stops at an error. A worker killed between a write and that UPDATE leaves the rows
  "sending"; the sweeper sends them again after the lease (the sink may hold a copy twice).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connection, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from institutions.models import Branding
from notifications.channels import email as email_channel
from notifications.channels import push as push_channel
from notifications.models import MARKETING_CATEGORIES, Channel, Delivery, PushSubscription, VapidKey
from notifications.selectors import notification_settings
from notifications.services.claims import ClaimedDelivery, deliveries_claim
from notifications.services.outbox import delivery_reschedule
from notifications.services.preferences import email_bounce_record, emails_sent_count
from notifications.services.rendering import RenderError, TemplateCache, render_delivery
from notifications.services.suppression import deliveries_suppress_unqualified
from notifications.webhooks import DELIVERY_METADATA

logger = logging.getLogger(__name__)

#: Anymail's per-recipient answers that mean the provider took the message.
_ACCEPTED = frozenset({"sent", "queued", "delivered", "unknown"})
#: ... and those that mean it refused the address (anymail raises when all are refused,
#: unless IGNORE_RECIPIENT_STATUS is set; then the status says so).
_REFUSED = frozenset({"rejected", "invalid", "bounced"})


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    retry: dict[int, datetime] = field(default_factory=dict)  # delivery id -> its new time
    dead: int = 0
    suppressed: int = 0  # the member no longer qualifies (opted out, bounced, left)


class LeaseLost(Exception):
    """The delivery is no longer this worker's to send (see ClaimedDelivery.mine)."""


def _still_claimed(delivery: ClaimedDelivery) -> bool:
    """The row is still "sending" under this claim: checked just before a message is handed
    to a provider or a push service, where no transaction can span the hand-over."""
    return delivery.mine().filter(state=Delivery.State.SENDING).exists()


def _claim_lost(delivery: ClaimedDelivery) -> None:
    logger.warning("delivery %s: claim lost before sending; left to its new claim", delivery.pk)


def _mark_sent(delivery: ClaimedDelivery, provider_id: str, sink: str) -> bool:
    """Record the delivery sent; False when the claim no longer holds it."""
    return bool(
        delivery.mine()
        .filter(state=Delivery.State.SENDING)
        .update(
            state=Delivery.State.SENT,
            sent_at=timezone.now(),
            provider_message_id=provider_id[:200],
            sink=sink,
            reason="",
        )
    )


@contextlib.contextmanager
def _sent_around_commit_point(delivery: ClaimedDelivery, provider_id: str, sink: str):
    """Around the final "." of DATA: record the delivery sent, uncommitted; commit after.

    The server takes responsibility for a message when it receives the final ".". Had the
    mark been committed before it, a worker killed in between (a database round trip: the
    COMMIT and its reply) would leave a row "sent" whose message the server discarded:
    lost. Here the UPDATE runs first, inside a transaction; the "." goes out; the COMMIT
    follows at once, before the server's reply is read. A worker killed before the "."
    takes its transaction with it: the row is "sending" again, the server has no message,
    and the sweeper sends it after the lease. What is left is the instant between two
    socket writes with no read between them; a kill there sends the message a second time
    (at-least-once, never lost).

    On PostgreSQL the COMMIT does not wait for the WAL flush: what must survive is the
    worker, not the database server (if PostgreSQL itself crashed within that fraction of
    a second the row would be "sending" again: a duplicate rather than a loss).

    Raises LeaseLost, with nothing written and nothing sent, when the claim no longer holds.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        if not _mark_sent(delivery, provider_id, sink):
            raise LeaseLost(delivery.pk)
        yield


def _mark_sent_many(environment, deliveries: list[ClaimedDelivery], sink: str) -> None:
    """Sent in one UPDATE (the rows of one claim, still held by it); the Message-ID is
    derived from the id as the message had it."""
    Delivery.objects.filter(
        pk__in=[d.pk for d in deliveries],
        state=Delivery.State.SENDING,
        claimed_at__in={d.claimed_at for d in deliveries},
    ).update(
        state=Delivery.State.SENT,
        sent_at=timezone.now(),
        provider_message_id=Concat(
            Value("<delivery."),
            Cast("pk", CharField()),
            Value(f".{environment.pk}@{environment.host}>"),
        ),
        sink=sink,
        reason="",
    )


def _mark_failed(delivery: ClaimedDelivery, reason: str, error: str = "") -> None:
    delivery.mine().update(
        state=Delivery.State.FAILED, reason=reason[:200], last_error=(error or reason)[:2000]
    )


def _transient(result: BatchResult, delivery, error: str) -> None:
    when = delivery_reschedule(delivery=delivery, error=error)
    if when is None:
        result.dead += 1
    else:
        result.retry[delivery.pk] = when


def deliveries_send(*, environment, delivery_ids: list[int]) -> BatchResult:
    """Claim and send a batch; nothing one delivery does stops the others."""
    claimed = deliveries_claim(environment=environment, delivery_ids=delivery_ids)
    return deliveries_send_claimed(environment=environment, claimed=claimed)


def deliveries_send_claimed(*, environment, claimed: list[ClaimedDelivery]) -> BatchResult:
    """Send deliveries this worker claimed; each is recorded only while its claim holds."""
    result = BatchResult()
    if not claimed:
        return result
    # Planned perhaps days ago: the member may have opted out, bounced or left since.
    suppressed = deliveries_suppress_unqualified(environment=environment, claimed=claimed)
    if suppressed:
        result.suppressed = len(suppressed)
        claimed = [d for d in claimed if d.pk not in suppressed]
        if not claimed:
            return result
    context = _BatchContext(environment)
    emails = [d for d in claimed if d.channel == Channel.EMAIL]
    pushes = [d for d in claimed if d.channel == Channel.PUSH]
    try:
        if emails:
            _send_emails(context, emails, result)
        if pushes:
            _send_pushes(context, pushes, result)
    finally:
        # Stopped by an error of our own (the database went away, say): what was not
        # tried yet goes back to pending for the task's retry, rather than waiting
        # "sending" for the lease to run out.
        untried = [d for d in claimed if d.pk not in context.tried]
        if untried:
            Delivery.objects.filter(
                pk__in=[d.pk for d in untried],
                state=Delivery.State.SENDING,
                claimed_at__in={d.claimed_at for d in untried},
            ).update(state=Delivery.State.PENDING, reason="released: its batch stopped at an error")
    return result


class _BatchContext:
    def __init__(self, environment):
        self.environment = environment
        self.settings_row = notification_settings(environment)
        self.branding = Branding.objects.filter(environment=environment).first()
        self.templates = TemplateCache(environment)
        self.test_addresses = self.settings_row.allowlist
        self.tried: set[int] = set()

    def render(self, delivery):
        return render_delivery(
            environment=self.environment,
            delivery=delivery,
            member=delivery.member,
            branding=self.branding,
            templates=self.templates,
            channel=delivery.channel,
            # Opens and clicks count towards a member's engagement; others have none.
            track=delivery.member_id is not None,
        )


def _send_emails(ctx: _BatchContext, deliveries: list[ClaimedDelivery], result: BatchResult):
    from_email = email_channel.sender(ctx.environment, ctx.settings_row, ctx.branding)
    by_route: dict[str, list[ClaimedDelivery]] = defaultdict(list)
    for d in deliveries:
        by_route[email_channel.route(ctx.environment, d.address, ctx.test_addresses)].append(d)
    sent_marketing: list[int] = []
    try:
        for route_name, group in by_route.items():
            route = _EmailRoute(ctx, route_name, result, sent_marketing)
            try:
                for delivery in group:
                    ctx.tried.add(delivery.pk)
                    route.send(delivery, from_email)
            finally:
                route.close()
    finally:
        emails_sent_count(environment=ctx.environment, member_ids=sent_marketing)


class _EmailRoute:
    """One route's connection in a batch, and the local-sink writes not yet recorded."""

    def __init__(self, ctx: _BatchContext, name: str, result: BatchResult, marketing: list):
        self.ctx = ctx
        self.name = name
        self.result = result
        self.marketing = marketing
        self.connection = None
        self.written: list[ClaimedDelivery] = []  # handed to a local sink, not yet recorded

    def send(self, delivery: ClaimedDelivery, from_email: str) -> None:
        ctx, result = self.ctx, self.result
        try:
            rendered = ctx.render(delivery)
        except RenderError as exc:
            _mark_failed(delivery, "template error", str(exc))
            result.failed += 1
            return
        message = email_channel.build_email(
            environment=ctx.environment,
            delivery=delivery,
            rendered=rendered,
            to=delivery.address,
            from_email=from_email,
            attachments=delivery.context.get("attachments", []),
            sink=self.name == email_channel.SINK,
        )
        committed = False

        @contextlib.contextmanager
        def commit_point():
            nonlocal committed
            message_id = message.extra_headers["Message-ID"]
            with _sent_around_commit_point(delivery, message_id, self.name):
                yield
            committed = True

        try:
            if self.connection is None:
                self.connection = email_channel.open_connection(self.name)
            connection = self.connection
            if isinstance(connection, SMTPBackend):
                email_channel.send(connection, message, commit_point)
                self._sent(delivery)
            elif isinstance(connection, ConsoleBackend | LocmemBackend):
                email_channel.write_local(connection, message)
                self.written.append(delivery)
            else:
                self._provider(connection, delivery, message)
        except email_channel.SMTPOutcome as exc:
            if exc.bounce:
                self._bounced(delivery, f"bounced: {exc}", str(exc))
            elif exc.permanent and exc.stage == "data":
                _mark_failed(delivery, f"message refused: {exc}", str(exc))
                result.failed += 1
            else:  # 4xx, or the server refusing our sender: retried, then dead
                _transient(result, delivery, f"SMTP {exc.stage}: {exc}")
        except AnymailRecipientsRefused as exc:
            self._bounced(delivery, f"rejected by the provider: {exc}", str(exc))
        except AnymailInvalidAddress as exc:
            _mark_failed(delivery, f"invalid address: {exc}", str(exc))
            result.failed += 1
        except LeaseLost:
            # Another worker sends it now: ours is dropped unsent (no final ".").
            _claim_lost(delivery)
            self._drop_connection()
        except Exception as exc:  # any transport error: this delivery only
            # The connection is in an unknown state (perhaps inside DATA): never reused.
            self._drop_connection()
            if committed:
                # The connection broke after the message was transmitted: the server most
                # likely has it. Keep "sent" rather than risk a second copy.
                Delivery.objects.filter(pk=delivery.pk).update(
                    last_error=f"no reply after the message was transmitted: {exc}"[:2000]
                )
                self._sent(delivery)
            else:
                _transient(result, delivery, f"{type(exc).__name__}: {exc}")

    def _provider(self, connection, delivery: ClaimedDelivery, message) -> None:
        """A provider API: recorded from its answer for this message's recipient."""
        if isinstance(connection, AnymailBaseBackend):
            # Echoed back by the provider's tracking webhooks (bounces, complaints).
            message.metadata = {DELIVERY_METADATA: str(delivery.pk)}
        email_channel.fixed_boundaries(message)
        if not _still_claimed(delivery):  # another worker's now: it sends it
            _claim_lost(delivery)
            return
        if not connection.send_messages([message]):
            _mark_failed(delivery, "not sent: the email backend cancelled it")
            self.result.failed += 1
            return
        answer = _recipient_answer(getattr(message, "anymail_status", None), delivery.address)
        verdict = getattr(answer, "status", None) or "unknown"
        provider_id = getattr(answer, "message_id", None)
        provider_id = (
            message.extra_headers["Message-ID"] if provider_id is None else str(provider_id)
        )
        if verdict in _REFUSED:
            self._bounced(delivery, f"rejected by the provider ({verdict})", verdict)
        elif verdict not in _ACCEPTED:  # "failed", "deferred", …
            _transient(self.result, delivery, f"the provider answered {verdict}")
        else:
            if not _mark_sent(delivery, provider_id, self.name):
                logger.warning("delivery %s: claim lost while the provider sent it", delivery.pk)
            self._sent(delivery)

    def _sent(self, delivery: ClaimedDelivery) -> None:
        self.result.sent += 1
        if delivery.category in MARKETING_CATEGORIES:
            self.marketing.append(delivery.member_id)

    def _bounced(self, delivery: ClaimedDelivery, reason: str, error: str) -> None:
        _mark_failed(delivery, reason, error)
        if delivery.member_id is not None:  # a member's address is dead for every message
            email_bounce_record(
                environment=self.ctx.environment,
                member_id=delivery.member_id,
                address=delivery.address,
                reason=error,
            )
        self.result.failed += 1

    def _drop_connection(self) -> None:
        """Close without a goodbye: an SMTP server discards a message whose DATA never
        ended (QUIT there would be taken for more of the message)."""
        self._flush()
        connection, self.connection = self.connection, None
        if isinstance(connection, SMTPBackend) and connection.connection is not None:
            with contextlib.suppress(Exception):
                connection.connection.close()
            connection.connection = None
        _close(connection)

    def _flush(self) -> None:
        if not self.written:
            return
        written, self.written = self.written, []
        _mark_sent_many(self.ctx.environment, written, self.name)
        for delivery in written:
            self._sent(delivery)

    def close(self) -> None:
        try:
            self._flush()
        finally:
            _close(self.connection)
            self.connection = None


def _recipient_answer(status, address: str):
    """Anymail's answer for this recipient (its status and message id); None from other
    backends, which answer nothing but success or an exception."""
    answers = dict(getattr(status, "recipients", None) or {})
    if len(answers) == 1:
        (answer,) = answers.values()
        return answer
    return {k.lower(): v for k, v in answers.items()}.get(address.lower())


def _close(connection) -> None:
    if connection is None:
        return
    # A broken connection may fail to close; it is dropped either way.
    with contextlib.suppress(Exception):
        connection.close()


def _push_sink_write(ctx: _BatchContext, delivery, payload: dict) -> None:
    path = getattr(settings, "NOTIFICATIONS_STAGING_PUSH_SINK", "") or str(
        settings.VAR_DIR / "staging-push.jsonl"
    )
    with open(path, "a", encoding="utf-8") as sink:
        sink.write(json.dumps({"delivery": delivery.pk, "member": delivery.member_id, **payload}))
        sink.write("\n")


def _send_pushes(ctx: _BatchContext, deliveries: list[ClaimedDelivery], result: BatchResult):
    vapid = VapidKey.objects.filter(environment=ctx.environment).first()
    subscriptions: dict[int, list] = defaultdict(list)
    for sub in PushSubscription.objects.filter(
        environment=ctx.environment, member_id__in={d.member_id for d in deliveries}
    ):
        subscriptions[sub.member_id].append(sub)
    subject = "mailto:" + (
        ctx.settings_row.from_email
        or (ctx.branding.support_email if ctx.branding else "")
        or "no-reply@" + ctx.environment.host
    )
    for delivery in deliveries:
        ctx.tried.add(delivery.pk)
        try:
            rendered = ctx.render(delivery)
        except RenderError as exc:
            _mark_failed(delivery, "template error", str(exc))
            result.failed += 1
            continue
        payload = {
            "title": rendered.push_title,
            "body": rendered.push_body,
            "url": rendered.push_url,
            "tag": delivery.campaign_key,
        }
        route_name = email_channel.route(ctx.environment, delivery.address, ctx.test_addresses)
        if not _still_claimed(delivery):  # another worker's now: it sends it
            _claim_lost(delivery)
            continue
        if route_name == email_channel.SINK:
            _push_sink_write(ctx, delivery, payload)
            _mark_sent(delivery, "", route_name)
            result.sent += 1
            continue
        subs = subscriptions.get(delivery.member_id, [])
        if vapid is None or not subs:
            _mark_failed(delivery, "no push subscription" if vapid else "no VAPID key")
            result.failed += 1
            continue
        ok, transient, rejected = [], [], []
        for sub in subs:
            try:
                ok.append(
                    push_channel.push_send(
                        vapid=vapid,
                        subscription=sub,
                        payload=payload,
                        subject=subject,
                        topic=f"d{delivery.pk}",
                    )
                )
            except push_channel.PushGone as exc:
                sub.delete()
                rejected.append(str(exc))
            except push_channel.PushRejected as exc:
                rejected.append(str(exc))
            except push_channel.PushTransient as exc:
                transient.append(str(exc))
        if ok:
            _mark_sent(delivery, ok[0] or "", route_name)
            result.sent += 1
        elif transient:
            _transient(result, delivery, "; ".join(transient))
        else:
            _mark_failed(delivery, rejected[0][:200], "; ".join(rejected))
            result.failed += 1
