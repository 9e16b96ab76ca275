"""Send claimed deliveries: one batch, one connection per route, every failure recorded."""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Coalesce, Concat, NullIf
from django.utils import timezone

from institutions.models import Branding
from notifications.channels import email as email_channel
from notifications.channels import push as push_channel
from notifications.models import MARKETING_CATEGORIES, Channel, Delivery, PushSubscription, VapidKey
from notifications.selectors import notification_settings
from notifications.services.outbox import deliveries_claim, delivery_reschedule
from notifications.services.preferences import email_bounce_record, emails_sent_count
from notifications.services.rendering import RenderError, TemplateCache, render_delivery

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    retry: dict[int, float] = field(default_factory=dict)  # delivery id -> delay (seconds)
    dead: int = 0


def _mark_sent(delivery: Delivery, provider_id: str, sink: str) -> None:
    Delivery.objects.filter(pk=delivery.pk, state=Delivery.State.SENDING).update(
        state=Delivery.State.SENT,
        sent_at=timezone.now(),
        provider_message_id=provider_id[:200],
        sink=sink,
        reason="",
    )


def _mark_sent_many(environment, ids: list[int], sink: str) -> None:
    """Sent in one UPDATE; the Message-ID is derived from the id as the message had it."""
    Delivery.objects.filter(pk__in=ids, state=Delivery.State.SENDING).update(
        state=Delivery.State.SENT,
        sent_at=timezone.now(),
        # A provider's own id (set as it answered) wins over the derived Message-ID.
        provider_message_id=Coalesce(
            NullIf("provider_message_id", Value("")),
            Concat(
                Value("<delivery."),
                Cast("pk", CharField()),
                Value(f".{environment.pk}@{environment.host}>"),
            ),
        ),
        sink=sink,
        reason="",
    )


def _mark_failed(delivery: Delivery, reason: str, error: str = "") -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        state=Delivery.State.FAILED, reason=reason[:200], last_error=(error or reason)[:2000]
    )


def _transient(result: BatchResult, delivery: Delivery, error: str) -> None:
    delay = delivery_reschedule(delivery=delivery, error=error)
    if delay is None:
        result.dead += 1
    else:
        result.retry[delivery.pk] = delay


def deliveries_send(*, environment, delivery_ids: list[int]) -> BatchResult:
    """Claim and send a batch; nothing one delivery does stops the others."""
    result = BatchResult()
    claimed = deliveries_claim(environment=environment, delivery_ids=delivery_ids)
    if not claimed:
        return result
    context = _BatchContext(environment)
    emails = [d for d in claimed if d.channel == Channel.EMAIL]
    pushes = [d for d in claimed if d.channel == Channel.PUSH]
    if emails:
        _send_emails(context, emails, result)
    if pushes:
        _send_pushes(context, pushes, result)
    return result


class _BatchContext:
    def __init__(self, environment):
        self.environment = environment
        self.settings_row = notification_settings(environment)
        self.branding = Branding.objects.filter(environment=environment).first()
        self.templates = TemplateCache(environment)
        self.test_addresses = {a.lower() for a in self.settings_row.test_addresses or []}

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


def _send_emails(ctx: _BatchContext, deliveries: list[Delivery], result: BatchResult) -> None:
    from_email = email_channel.sender(ctx.environment, ctx.settings_row, ctx.branding)
    by_route: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_route[email_channel.route(ctx.environment, d.address, ctx.test_addresses)].append(d)
    sent_marketing: list[int] = []
    pending_marks: dict[str, list[int]] = {}
    message_id = email_channel.message_id
    for route_name, group in by_route.items():
        connection = None
        for delivery in group:
            try:
                rendered = ctx.render(delivery)
            except RenderError as exc:
                _mark_failed(delivery, "template error", str(exc))
                result.failed += 1
                continue
            message = email_channel.build_email(
                environment=ctx.environment,
                delivery=delivery,
                rendered=rendered,
                to=delivery.address,
                from_email=from_email,
                attachments=delivery.context.get("attachments", []),
                sink=route_name == email_channel.SINK,
            )
            committed = False

            def commit_point(delivery=delivery, route_name=route_name, batched=False):
                # Files and provider APIs: record the batch in one UPDATE at its end.
                nonlocal committed
                if batched:
                    pending_marks.setdefault(route_name, []).append(delivery.pk)
                else:
                    _mark_sent(delivery, message_id(ctx.environment, delivery.pk), route_name)
                committed = True

            try:
                if connection is None:
                    connection = email_channel.open_connection(route_name)
                provider_id = email_channel.send(connection, message, commit_point)
                if provider_id != message.extra_headers["Message-ID"]:
                    Delivery.objects.filter(pk=delivery.pk).update(provider_message_id=provider_id)
                result.sent += 1
                if delivery.category in MARKETING_CATEGORIES:
                    sent_marketing.append(delivery.member_id)
            except email_channel.SMTPOutcome as exc:
                if exc.bounce:
                    _mark_failed(delivery, f"bounced: {exc}", str(exc))
                    if delivery.member_id is not None:
                        email_bounce_record(
                            environment=ctx.environment,
                            member_id=delivery.member_id,
                            reason=str(exc),
                        )
                    result.failed += 1
                elif exc.permanent and exc.stage == "data":
                    _mark_failed(delivery, f"message refused: {exc}", str(exc))
                    result.failed += 1
                else:  # 4xx, or the server refusing our sender: retried, then dead
                    _transient(result, delivery, f"SMTP {exc.stage}: {exc}")
            except (smtplib.SMTPException, OSError) as exc:
                # The connection broke. After the commit point the server most likely has
                # the message: keep "sent" rather than risk a second copy.
                if committed:
                    Delivery.objects.filter(pk=delivery.pk).update(
                        last_error=f"no reply after the message was transmitted: {exc}"[:2000]
                    )
                    result.sent += 1
                else:
                    _transient(result, delivery, f"{type(exc).__name__}: {exc}")
                _close(connection)
                connection = None
        _close(connection)
    for route_name, ids in pending_marks.items():
        _mark_sent_many(ctx.environment, ids, route_name)
    emails_sent_count(environment=ctx.environment, member_ids=sent_marketing)


def _close(connection) -> None:
    if connection is None:
        return
    # A broken connection may fail to close; it is dropped either way.
    with contextlib.suppress(Exception):
        connection.close()


def _push_sink_write(ctx: _BatchContext, delivery: Delivery, payload: dict) -> None:
    path = getattr(settings, "NOTIFICATIONS_STAGING_PUSH_SINK", "") or str(
        settings.VAR_DIR / "staging-push.jsonl"
    )
    with open(path, "a", encoding="utf-8") as sink:
        sink.write(json.dumps({"delivery": delivery.pk, "member": delivery.member_id, **payload}))
        sink.write("\n")


def _send_pushes(ctx: _BatchContext, deliveries: list[Delivery], result: BatchResult) -> None:
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
        route_name = email_channel.route(ctx.environment, delivery.member.email, ctx.test_addresses)
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
