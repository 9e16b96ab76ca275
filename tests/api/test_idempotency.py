"""Idempotency-Key: a retry gets the stored answer and changes nothing; a reused key with
another body is refused; of concurrent requests with one key exactly one does the work."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.exceptions import Throttled

from homes.models import Member
from homes.services.sync import ConcurrentChange, member_bulk_upsert
from institutions.models import AuditEntry, IdempotencyRecord
from institutions.services.idempotency import (
    IdempotencyError,
    idempotency_abandon,
    idempotency_begin,
    idempotency_prune,
)
from institutions.tasks import idempotency_prune as idempotency_prune_task
from institutions.tenancy import environment_scope
from tests.api.helpers import api_client, member_row
from tests.institutions.factories import idempotency_record_factory
from tests.services import require_postgres


def _post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/members/", body, format="json", **headers)


def _members(environment) -> list[tuple]:
    with environment_scope(environment):
        return list(
            Member.objects.filter(environment=environment)
            .order_by("pk")
            .values_list("pk", "external_id", "last_name", "updated_at")
        )


@pytest.mark.django_db
def test_retry_with_the_same_key__returns_the_stored_answer_and_changes_nothing(tenant):
    env = tenant.production
    client = api_client(env)
    body = {"members": [member_row(i) for i in range(3)]}
    first = _post(client, body, key="sync-2026-11-21-part-1")
    assert first.status_code == 200
    assert first.json()["created"] == 3
    assert "Idempotent-Replayed" not in first
    before, audits = _members(env), AuditEntry.objects.filter(environment=env).count()

    again = _post(client, body, key="sync-2026-11-21-part-1")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # "created": 3, as the first time
    assert _members(env) == before
    assert AuditEntry.objects.filter(environment=env).count() == audits


@pytest.mark.django_db
def test_same_key_with_a_different_body__is_refused_422_and_changes_nothing(tenant):
    env = tenant.production
    client = api_client(env)
    assert _post(client, {"members": [member_row(1)]}, key="k-1").status_code == 200
    before = _members(env)
    response = _post(client, {"members": [member_row(1, last_name="Other")]}, key="k-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert _members(env) == before


@pytest.mark.django_db
def test_refused_batch__is_stored_too__a_retry_gets_the_same_400(tenant):
    client = api_client(tenant.production)
    body = {"members": [member_row(1, email="not an email")]}
    first = _post(client, body, key="k-bad")
    assert first.status_code == 400
    again = _post(client, body, key="k-bad")
    assert again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refusal", "status"),
    [(ConcurrentChange("lost the race three times"), 409), (Throttled(wait=1), 429)],
)
def test_conflict_or_throttle__is_not_stored__a_retry_with_the_same_key_does_the_work(
    tenant, monkeypatch, refusal, status
):
    env = tenant.production
    client = api_client(env)
    calls = []

    def refused_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise refusal
        return member_bulk_upsert(**kwargs)

    monkeypatch.setattr("homes.api.views.member_bulk_upsert", refused_once)
    body = {"members": [member_row(1)]}
    assert _post(client, body, key="k-retry").status_code == status
    assert _members(env) == []
    again = _post(client, body, key="k-retry")
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again
    assert again.json()["created"] == 1
    assert len(calls) == 2


@pytest.mark.django_db
def test_keys_belong_to_their_api_key(tenant):
    env = tenant.production
    one, two = api_client(env), api_client(env)
    assert _post(one, {"members": [member_row(1)]}, key="shared").status_code == 200
    response = _post(two, {"members": [member_row(2)]}, key="shared")
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response
    assert len(_members(env)) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", " leading-space", "x" * 256, "naïve"])
def test_malformed_idempotency_key__is_bad_input(tenant, key):
    response = api_client(tenant.production).post(
        "/api/v1/members/",
        {"members": [member_row(1)]},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert _members(tenant.production) == []


@pytest.mark.django_db
def test_begin__in_progress_and_stale_and_expired_records(tenant):
    env = tenant.production
    with environment_scope(env):
        record = idempotency_record_factory(environment=env, key="busy")
        claim = {
            "environment": env,
            "api_key": record.api_key,
            "key": "busy",
            "request_hash": record.request_hash,
            "method": "POST",
            "path": "/api/v1/members/",
        }
        with pytest.raises(IdempotencyError) as refused:
            idempotency_begin(**claim)
        assert refused.value.kind == "in_progress"
        with pytest.raises(IdempotencyError) as refused:
            idempotency_begin(**{**claim, "request_hash": "1" * 64})
        assert refused.value.kind == "mismatch"
        # The request that claimed it died: after its lock, another takes it over.
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            locked_until=timezone.now() - timedelta(seconds=1)
        )
        begun = idempotency_begin(**claim)
        assert begun.record.pk == record.pk
        assert not begun.replay
        # Abandoned (a failure on our side): the next request claims it afresh.
        idempotency_abandon(record=begun.record)
        begun = idempotency_begin(**claim)
        assert begun.record.pk != record.pk
        assert not begun.replay
        # Past its retention, a key is new again.
        IdempotencyRecord.objects.filter(pk=begun.record.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        again = idempotency_begin(**{**claim, "request_hash": "2" * 64})
        assert again.record.pk != begun.record.pk
        assert not again.replay


@pytest.mark.django_db
def test_prune__forgets_records_past_their_retention(tenant, other_tenant):
    old = idempotency_record_factory(environment=tenant.production, key="old")
    other_old = idempotency_record_factory(environment=other_tenant.staging, key="old")
    fresh = idempotency_record_factory(environment=tenant.production, key="fresh")
    IdempotencyRecord._base_manager.filter(pk__in=[old.pk, other_old.pk]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert idempotency_prune_task.delay().get() == 2
    assert list(IdempotencyRecord._base_manager.values_list("pk", flat=True)) == [fresh.pk]
    assert idempotency_prune() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key__exactly_one_does_the_work(tenant):
    require_postgres()
    env = tenant.production
    raw = api_client(env).raw_key
    body = {"members": [member_row(i) for i in range(200)]}
    threads, results = 6, []
    barrier = threading.Barrier(threads)

    def call():
        client = api_client(env, raw_key=raw)
        barrier.wait()
        try:
            response = _post(client, body, key="one-key")
            results.append((response.status_code, response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == threads
    fresh = [r for r in results if r == (200, None)]
    assert len(fresh) == 1, results
    # The others were told to retry (409) or got the stored answer.
    assert all(r in ((409, None), (200, "true")) for r in results if r != (200, None)), results
    assert len(_members(env)) == 200
    assert AuditEntry.objects.filter(environment=env, object_type="homes.Member").count() == 1
