"""Idempotent POSTs: the first request with a key is processed, later ones get its response.

The record is inserted (and committed) before the work starts, so of two concurrent
requests with one key exactly one inserts it: the other finds it in progress and is told
to retry (409). A completed record answers every retry with the stored response, for
API_IDEMPOTENCY_TTL_HOURS; the same key with a different request is refused (422).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from institutions.models import ApiKey, Environment, IdempotencyRecord


class IdempotencyError(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind  # "in_progress" | "mismatch"


@dataclass(frozen=True)
class Begun:
    record: IdempotencyRecord
    replay: bool  # True: answer with the stored response, do no work


def idempotency_begin(
    *,
    environment: Environment,
    api_key: ApiKey,
    key: str,
    request_hash: str,
    method: str,
    path: str,
) -> Begun:
    """Claim `key` for this request, or find what a previous request with it got."""
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    environment=environment,
                    api_key=api_key,
                    key=key,
                    request_hash=request_hash,
                    method=method,
                    path=path[:300],
                    created_at=now,
                    locked_until=now + timedelta(seconds=settings.API_IDEMPOTENCY_LOCK_SECONDS),
                    expires_at=now + timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS),
                )
            return Begun(record, replay=False)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(
            environment=environment, api_key=api_key, key=key
        ).first()
        if existing is None:
            continue  # removed meanwhile (abandoned or expired): try to claim it again
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.request_hash != request_hash:
            raise IdempotencyError("mismatch")
        if existing.state == IdempotencyRecord.State.COMPLETED:
            return Begun(existing, replay=True)
        if existing.locked_until > now:
            raise IdempotencyError("in_progress")
        # The request that claimed it never finished (its process died): take it over.
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk,
            state=IdempotencyRecord.State.IN_PROGRESS,
            locked_until=existing.locked_until,
        ).update(locked_until=now + timedelta(seconds=settings.API_IDEMPOTENCY_LOCK_SECONDS))
        if taken:
            existing.refresh_from_db()
            return Begun(existing, replay=False)
        raise IdempotencyError("in_progress")
    raise IdempotencyError("in_progress")


def idempotency_complete(*, record: IdempotencyRecord, status_code: int, body: str) -> None:
    """Store the response (its JSON text) every retry with this key will get."""
    IdempotencyRecord.objects.filter(pk=record.pk, environment=record.environment).update(
        state=IdempotencyRecord.State.COMPLETED, status_code=status_code, response_body=body
    )


def idempotency_abandon(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed on our side, so that a retry does the work."""
    IdempotencyRecord.objects.filter(
        pk=record.pk, environment=record.environment, state=IdempotencyRecord.State.IN_PROGRESS
    ).delete()


def idempotency_prune(*, now=None) -> int:
    """Delete records past their retention, across environments (a periodic task)."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord._base_manager.filter(expires_at__lte=now).delete()
    return deleted
