"""Homes emits the lifecycle events that journeys and engagement metrics start from."""

from decimal import Decimal as D

import pytest

from homes.models import Member
from homes.services import refresh_run, refresh_start
from homes.services.engagement import member_opt_out
from homes.services.members import member_create
from homes.services.recompute import properties_recompute
from institutions import events
from tests.homes.factories import (
    OfferProductFactory,
    PropertyFactory,
    home_settings_factory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(monkeypatch):
    seen = []
    monkeypatch.setattr(events, "_sinks", [seen.append])
    monkeypatch.setattr(events, "_batch_sinks", {})
    return seen


def _names(seen):
    return [e.name for e in seen]


def test_member_create__enrolled__emits_member_enrolled_and_opt_out_emits_opted_out(
    scoped, received
):
    member = member_create(
        environment=scoped, email="new@example.test", enrollment=Member.Enrollment.ENROLLED
    )
    pending = member_create(environment=scoped, email="later@example.test")
    assert _names(received) == ["member_enrolled"]
    assert received[0].member_id == member.pk
    member_opt_out(environment=scoped, member=pending)
    assert _names(received)[-1] == "member_opted_out"
    assert received[-1].member_id == pending.pk


def test_refresh__value_change_of_one_percent_or_more__emits_home_value_changed(staging, received):
    home_settings_factory(staging, provider_order=["mock"])
    moved = PropertyFactory(environment=staging, value=D(100000))
    refresh_run(environment=staging, run=refresh_start(environment=staging, enqueue=False))
    moved.refresh_from_db()
    changes = [e for e in received if e.name == "home_value_changed"]
    expected = round(float((moved.value - 100000) / 100000 * 100), 1)
    assert abs(expected) >= 1
    assert len(changes) == 1
    assert changes[0].properties == {"property_id": moved.pk, "change_pct": expected}
    assert changes[0].member_id == moved.member_id
    received.clear()
    # The same value again is no news.
    refresh_run(environment=staging, run=refresh_start(environment=staging, enqueue=False))
    assert "home_value_changed" not in _names(received)


def test_recompute__new_match__emits_offer_matched_once(scoped, received):
    home_settings_factory(scoped, provider_order=["mock"])
    prop = PropertyFactory(environment=scoped, value=D(500000))
    received.clear()
    product = OfferProductFactory(environment=scoped)
    properties_recompute(environment=scoped)
    matched = [e for e in received if e.name == "offer_matched"]
    assert [(e.member_id, e.properties["offer_id"]) for e in matched] == [
        (prop.member_id, product.pk)
    ]
    received.clear()
    properties_recompute(environment=scoped)
    assert "offer_matched" not in _names(received)
