"""Forwarding accepted events to destinations, through filters, with retries and a dead letter.

Events are cut into batches (outbox rows) in id order behind a short safety lag, so an
event committed late by a slow transaction is still picked up, and the cursor never passes
an event still inside the lag; each batch is claimed by one run before it is posted (runs
overlap: a beat tick while a slow run goes, a redelivered message), sent with
retries and exponential backoff and dead-lettered after MAX_ATTEMPTS; a destination that
keeps failing is disabled (visible in the admin), and nothing batched is dropped, except
what may no longer go when it is sent: events of members erased since, and (where consent
is required) of members who have withdrawn it since.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from flags.models import AnalyticsConsent, Destination, DestinationBatch, Event
from homes.models import Member
from institutions import outbound

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
SAFETY_LAG = timedelta(seconds=30)
MAX_ATTEMPTS = 5
DISABLE_AFTER_FAILURES = 10
BACKOFF_BASE_SECONDS = 30
# How long a run holds a batch it is posting; a batch still "sending" after that was left
# by a run that died, and the next run takes it over.
CLAIM_LEASE = timedelta(minutes=10)
SIGNATURE_HEADER = "X-Chimney-Signature"
UNSIGNED_ERROR = "No signing secret: set one in this environment's admin; events wait until then."


def _rule_matches(rule: dict, properties: dict) -> bool:
    op, key, value = rule.get("op", "eq"), rule.get("property"), rule.get("value")
    present = key in properties
    actual = properties.get(key)
    if op == "exists":
        return present == bool(value if value is not None else True)
    if op == "eq":
        return present and actual == value
    if op == "ne":
        return actual != value
    if op == "in":
        return present and actual in (value or [])
    if op == "not_in":
        return actual not in (value or [])
    return False


def destination_accepts(destination: Destination, event: Event, consented: set[int]) -> bool:
    """Whether the destination's filters let this event through."""
    if event.disposition != Event.Disposition.ACCEPTED:
        return False
    if destination.exclude_test_members and event.is_test:
        return False
    if destination.allow_events and event.name not in destination.allow_events:
        return False
    if event.name in (destination.deny_events or []):
        return False
    if destination.require_consent and event.member_id not in consented:
        return False
    return all(_rule_matches(rule, event.properties or {}) for rule in destination.rules or [])


def consenting_members(environment, member_ids) -> set[int]:
    return set(
        AnalyticsConsent.objects.filter(
            environment=environment, member_id__in=member_ids, granted=True
        ).values_list("member_id", flat=True)
    )


def filtered(destination: Destination, events: list[Event]) -> list[Event]:
    consented = (
        consenting_members(destination.environment, {e.member_id for e in events if e.member_id})
        if destination.require_consent
        else set()
    )
    return [e for e in events if destination_accepts(destination, e, consented)]


def event_payload(event: Event) -> dict:
    return {
        "id": event.pk,
        "name": event.name,
        "member_id": event.member_id,
        "properties": event.properties,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "source": event.source,
        "plan_version": event.plan_version,
        "plan_status": event.plan_status,
    }


def _settled_prefix(events, cutoff) -> list[Event]:
    """The events in id order up to (not including) the first one received after the cutoff.

    Ids and receipt times are not in the same order: a buffered page view is received when
    the member views the page but gets its id when the buffer is written, up to a second
    (or, after a database outage, minutes) later, after events written straight away. Were
    the newer events filtered out instead, the cursor would move past them for good.
    """
    settled = []
    for event in events:
        if event.received_at > cutoff:
            break
        settled.append(event)
    return settled


def destination_batch_events(*, environment, destination: Destination, now=None) -> int:
    """Cut the next batches of new accepted events for a webhook; returns batches made."""
    now = now or timezone.now()
    made = 0
    while True:
        with transaction.atomic():
            destination = Destination.objects.select_for_update().get(pk=destination.pk)
            if not destination.enabled or destination.state == Destination.State.DISABLED:
                return made
            following = Event.objects.filter(
                environment=environment, pk__gt=destination.cursor
            ).order_by("pk")[:BATCH_SIZE]
            events = _settled_prefix(following, now - SAFETY_LAG)
            if not events:
                return made
            chosen = filtered(destination, events)
            if chosen:
                DestinationBatch.objects.create(
                    environment=environment,
                    destination=destination,
                    first_event_id=events[0].pk,
                    last_event_id=events[-1].pk,
                    event_count=len(chosen),
                    payload=json.loads(
                        json.dumps([event_payload(e) for e in chosen], cls=DjangoJSONEncoder)
                    ),
                    next_attempt_at=now,
                )
                made += 1
            destination.cursor = events[-1].pk
            destination.save(update_fields=["cursor"])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib replays a POST answered 301, 302 or 303 as a GET without its body, and that
    GET's 200 would count the batch as sent: redirects are not followed (an HTTPError)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class EndpointRedirected(urllib.error.URLError):
    """The endpoint answered with a redirect: a failure, retried, that says where to."""


def _post(destination: Destination, batch: DestinationBatch) -> None:
    if not destination.secret:
        raise ValueError(UNSIGNED_ERROR)
    body = json.dumps(
        {"destination": destination.name, "batch": batch.pk, "events": batch.payload},
        separators=(",", ":"),
    ).encode()
    request = urllib.request.Request(  # noqa: S310  (http(s) URL validated by the model)
        destination.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Chimney-Events/1",
            SIGNATURE_HEADER: sign(destination.secret, int(time.time()), body),
            "X-Chimney-Batch": str(batch.pk),
        },
    )
    try:
        with outbound.public_only():  # an endpoint typed by the institution's staff
            response = _opener.open(request, timeout=destination.timeout_seconds)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            location = urllib.parse.urljoin(destination.url, exc.headers.get("Location", ""))
            raise EndpointRedirected(
                f"the endpoint redirected ({exc.code}) to {location}: if that is its new "
                "address, set it as the destination's URL"
            ) from exc
        raise
    with response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(destination.url, response.status, "", {}, None)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), 3600))


def _batch_claim(batch: DestinationBatch, now) -> bool:
    """Take a due batch for this run: one conditional UPDATE, so of two overlapping runs
    only one gets it (a pending batch, or one whose claim's lease ran out)."""
    lease_until = max(now, timezone.now()) + CLAIM_LEASE
    return bool(
        DestinationBatch.objects.filter(
            pk=batch.pk,
            status__in=[DestinationBatch.Status.PENDING, DestinationBatch.Status.SENDING],
            next_attempt_at__lte=now,
        ).update(status=DestinationBatch.Status.SENDING, next_attempt_at=lease_until)
    )


def _still_sendable(environment, destination: Destination, payload: list) -> list:
    """The batch's events that may still go: a member erased since the batch was cut is
    not sent, and neither (to a destination that requires consent) is a member who has
    withdrawn it since."""
    member_ids = {event.get("member_id") for event in payload} - {None}
    live = set(
        Member.objects.filter(
            environment=environment, pk__in=member_ids, erased_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if destination.require_consent:
        consented = consenting_members(environment, live)
        return [event for event in payload if event.get("member_id") in consented]
    return [
        event for event in payload if event.get("member_id") is None or event["member_id"] in live
    ]


def _batch_failed(batch: DestinationBatch, destination: Destination, error: str, now) -> None:
    """One failed try: retried with backoff, dead-lettered after MAX_ATTEMPTS; the
    destination shows the error, and is disabled after DISABLE_AFTER_FAILURES."""
    with transaction.atomic():
        batch.attempts += 1
        batch.last_error = error
        if batch.attempts >= MAX_ATTEMPTS:
            batch.status = DestinationBatch.Status.DEAD
        else:
            batch.status = DestinationBatch.Status.PENDING
            batch.next_attempt_at = now + backoff(batch.attempts)
        batch.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        _destination_failed(destination, error)


def _destination_failed(destination: Destination, error: str) -> None:
    destination.consecutive_failures += 1
    destination.last_error = error
    destination.state = (
        Destination.State.DISABLED
        if destination.consecutive_failures >= DISABLE_AFTER_FAILURES
        else Destination.State.FAILING
    )
    destination.save(update_fields=["consecutive_failures", "last_error", "state"])


def _unexpected(exc: Exception) -> str:
    return f"Unexpected error: {type(exc).__name__}: {exc}"[:500]


def destination_batch_send(*, environment, batch: DestinationBatch, now=None) -> str:
    """Claim one due batch and try it once; returns its status afterwards ("sending":
    another run has it). An unexpected error is recorded like a failed try, then raised."""
    now = now or timezone.now()
    if not _batch_claim(batch, now):
        return DestinationBatch.Status.SENDING
    destination = batch.destination
    try:
        events = _still_sendable(environment, destination, batch.payload)
        dropped = len(batch.payload) - len(events)
        if dropped:
            logger.info(
                "Batch %s for destination %s: %d event(s) no longer sendable left out "
                "(member erased or consent withdrawn)",
                batch.pk,
                destination.pk,
                dropped,
            )
            batch.payload, batch.event_count = events, len(events)
            batch.save(update_fields=["payload", "event_count"])
        if events:
            _post(destination, batch)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"[:500]
        _batch_failed(batch, destination, error, now)
        return batch.status
    except Exception as exc:
        _batch_failed(batch, destination, _unexpected(exc), now)
        raise
    with transaction.atomic():
        batch.status, batch.sent_at = DestinationBatch.Status.SENT, now
        if not events:  # nothing left to send: done without contacting the endpoint
            batch.save(update_fields=["status", "sent_at"])
            return batch.status
        batch.attempts += 1
        batch.save(update_fields=["status", "sent_at", "attempts"])
        destination.consecutive_failures, destination.state = 0, Destination.State.ACTIVE
        destination.last_success_at, destination.last_error = now, ""
        destination.save(
            update_fields=["consecutive_failures", "state", "last_success_at", "last_error"]
        )
    return batch.status


def destinations_forward(*, environment, now=None) -> dict:
    """Batch and send for every enabled webhook of the environment (the beat task's body)."""
    now = now or timezone.now()
    sent = failed = 0
    unexpected: Exception | None = None
    for destination in Destination.objects.filter(
        environment=environment, kind=Destination.Kind.WEBHOOK, enabled=True
    ).exclude(state=Destination.State.DISABLED):
        if not destination.secret:
            # A webhook promoted by release has no secret in production yet (secrets are
            # not promoted): nothing is signed with an empty key. Its events wait behind
            # the cursor until the secret is set, and the admin says why.
            Destination.objects.filter(pk=destination.pk).update(
                state=Destination.State.FAILING, last_error=UNSIGNED_ERROR
            )
            failed += 1
            continue
        try:
            destination_batch_events(environment=environment, destination=destination, now=now)
        except Exception as exc:
            # Shown on the destination instead of an "Active" one that sends nothing; the
            # other destinations still go, and the error is raised once they have.
            _destination_failed(destination, _unexpected(exc))
            unexpected = unexpected or exc
            failed += 1
            continue
        due = DestinationBatch.objects.filter(
            destination=destination,
            status__in=[DestinationBatch.Status.PENDING, DestinationBatch.Status.SENDING],
            next_attempt_at__lte=now,
        ).order_by("pk")
        for batch in due:
            destination.refresh_from_db()
            if destination.state == Destination.State.DISABLED:
                break
            batch.destination = destination
            try:
                status = destination_batch_send(environment=environment, batch=batch, now=now)
            except Exception as exc:  # recorded on the batch and the destination
                unexpected = unexpected or exc
                failed += 1
                break
            if status == DestinationBatch.Status.SENT:
                sent += 1
                continue
            if status != DestinationBatch.Status.SENDING:
                failed += 1
            # Keep order: later batches wait for this one's retry, or for the run sending it.
            break
    if unexpected is not None:
        raise unexpected
    return {"sent": sent, "failed": failed}


def destination_reenable(*, environment, destination: Destination, actor) -> int:
    """Turn a disabled destination back on and requeue its dead letters; returns requeued.

    In production `enabled` comes by release, like the rest of the configuration: there
    this only lifts the automatic disable (state) of a destination the release turned on.
    """
    from institutions.models import AuditEntry
    from institutions.services import audit_record

    with transaction.atomic():
        destination = Destination.objects.select_for_update().get(
            pk=destination.pk, environment=environment
        )
        if environment.is_production and not destination.enabled:
            raise ValidationError(
                f"{destination.name} is turned off by release: turn it on in staging and "
                "release it."
            )
        before = {"enabled": destination.enabled, "state": destination.state}
        requeued = DestinationBatch.objects.filter(
            destination=destination, status=DestinationBatch.Status.DEAD
        ).update(status=DestinationBatch.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
        destination.state = Destination.State.ACTIVE
        destination.consecutive_failures = 0
        destination.enabled = True
        destination.save(update_fields=["state", "consecutive_failures", "enabled"])
        after = {"enabled": destination.enabled, "state": destination.state}
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            environment=environment,
            obj=destination,
            changes={
                name: {"before": before[name], "after": after[name]}
                for name in before
                if before[name] != after[name]
            },
            reason=f"re-enabled; {requeued} dead-lettered batches requeued",
        )
    return requeued
