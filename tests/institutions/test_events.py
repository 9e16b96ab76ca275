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
