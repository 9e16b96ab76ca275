import pytest

from institutions import events
from tests.factories import MemberFactory


@pytest.mark.django_db
def test_emit__is_test_comes_from_the_member_and_reaches_every_sink(tenant, monkeypatch):
    received = []
    monkeypatch.setattr(events, "_sinks", [])
    events.register_sink(received.append)
    events.register_sink(received.append)  # registering twice is harmless
    tester = MemberFactory(environment=tenant.production, is_test=True)
    event = events.emit(
        environment=tenant.production, name="offer_viewed", member=tester, properties={"offer": 3}
    )
    assert received == [event]
    assert event.is_test is True
    assert event.member_id == tester.pk
    assert event.environment_id == tenant.production.pk


@pytest.mark.django_db
def test_emit_many__batch_sinks_get_one_call_and_plain_sinks_each_event(tenant, monkeypatch):
    monkeypatch.setattr(events, "_sinks", [])
    monkeypatch.setattr(events, "_batch_sinks", {})
    plain, batches = [], []

    def bulk_capable(event):
        raise AssertionError("the batch handler should have been used")

    events.register_sink(plain.append)
    events.register_sink(bulk_capable, batch=batches.append)
    a = MemberFactory(environment=tenant.production, is_test=True)
    b = MemberFactory(environment=tenant.production, is_test=False)
    emitted = events.emit_many(
        environment=tenant.production,
        items=[("home_value_changed", a, {"change_pct": 3.2}), ("offer_matched", b, {})],
    )
    assert plain == emitted
    assert batches == [emitted]
    assert [e.is_test for e in emitted] == [True, False]
    assert events.emit_many(environment=tenant.production, items=[]) == []
