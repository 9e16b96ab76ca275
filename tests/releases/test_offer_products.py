"""Offer products across releases: production's stored matches follow a deploy and a
rollback, and removing or renaming a product never deletes members' offer history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from homes.models import MemberOffer, OfferMatch, OfferProduct, Property
from homes.services import properties_recompute
from institutions.tenancy import environment_scope
from releases.models import Release, RetiredRow
from releases.services import release_deploy, release_rollback
from releases.snapshot import capture, snapshot_hash
from tests.factories import MemberFactory
from tests.homes.factories import LienFactory, OfferProductFactory, PropertyFactory
from tests.releases.test_release_flow import approved


def local(tenant, *args) -> dt.datetime:
    """A moment on the institution's own clock: deploy windows are in its time zone, so a
    moment written in another zone falls inside or outside them depending on the zone."""
    return dt.datetime(*args, tzinfo=tenant.institution.tz)


@pytest.fixture
def window(tenant, clock):
    """Sets the clock to a Monday afternoon where the institution is (outside the default
    windows, Tuesday to Thursday 22:00-05:00 local time); returns a moment inside the next
    window, that Tuesday at 23:00 local time."""
    clock.set(local(tenant, 2025, 3, 3, 14, 0))
    return local(tenant, 2025, 3, 4, 23, 0)


def matches(environment) -> list[tuple[str, Decimal]]:
    rows = OfferMatch._base_manager.filter(environment=environment)
    return sorted(rows.values_list("product__name", "rate"))


@pytest.fixture
def member_home(tenant):
    """A member's home in production with equity to borrow against, its matches stored."""
    production = tenant.production
    prop = PropertyFactory(environment=production)
    LienFactory(
        environment=production,
        property=prop,
        original_amount=Decimal("200000"),
        balance=Decimal("150000"),
        rate=Decimal("4.0"),
        origination_date=dt.date(2016, 1, 1),
        balance_as_of=dt.date(2024, 1, 1),
    )
    Property._base_manager.filter(pk=prop.pk).update(
        value=Decimal("900000"),
        value_low=Decimal("850000"),
        value_high=Decimal("950000"),
        confidence=80,
        valued_on=dt.date(2024, 4, 1),
    )
    with environment_scope(production):
        properties_recompute(environment=production)
    return prop


@pytest.mark.django_db
def test_release_deploy__apr_changed_and_product_added__production_matches_follow_and_back(
    tenant, people, clock, window, member_home, django_capture_on_commit_callbacks
):
    for environment in (tenant.staging, tenant.production):
        OfferProductFactory(environment=environment, name="HELOC A")
    with environment_scope(tenant.production):
        properties_recompute(environment=tenant.production)
    assert matches(tenant.production) == [("HELOC A", Decimal("7.250"))]
    OfferProductFactory(environment=tenant.staging, name="HELOC B", apr=Decimal("6.500"))
    OfferProduct._base_manager.filter(environment=tenant.staging, name="HELOC A").update(
        apr=Decimal("9.990")
    )
    release = approved(tenant, people)
    clock.set(window)
    with django_capture_on_commit_callbacks(execute=True):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert matches(tenant.production) == [
        ("HELOC A", Decimal("9.990")),
        ("HELOC B", Decimal("6.500")),
    ]

    release.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        release_rollback(
            environment=tenant.staging, release=release, actor=people.it, reason="Wrong APR"
        )
    assert matches(tenant.production) == [("HELOC A", Decimal("7.250"))]


@pytest.mark.django_db
def test_release_deploy__branding_only__does_not_recompute_matches(
    tenant, people, clock, window, member_home, django_capture_on_commit_callbacks, monkeypatch
):
    from homes import tasks

    queued = []
    monkeypatch.setattr(tasks.recompute_matches, "delay", queued.append)
    release = approved(tenant, people)
    clock.set(window)
    with django_capture_on_commit_callbacks(execute=True):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert queued == []


@pytest.mark.django_db
def test_release__renamed_product_with_member_history__retired_and_restored_by_rollback(
    tenant, people, clock, window
):
    production = tenant.production
    OfferProductFactory(environment=tenant.staging, name="HELOC")
    product = OfferProductFactory(environment=production, name="HELOC")
    member = MemberFactory(environment=production)
    selected_at = clock.moment
    MemberOffer._base_manager.create(
        environment=production,
        member=member,
        product=product,
        selected_at=selected_at,
        view_count=3,
    )
    OfferProduct._base_manager.filter(environment=tenant.staging).update(name="HELOC Plus")

    release = approved(tenant, people)
    removed = next(e for e in release.diff if e["change"] == "removed")
    # Said in the diff, before anyone signs.
    assert "Kept in production as inactive (retired)" in removed["note"]
    assert "1 member offer" in removed["note"]

    clock.set(window)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    product.refresh_from_db()
    assert not product.is_active  # members and matching no longer see it
    state = MemberOffer._base_manager.get(environment=production)
    assert (state.product_id, state.view_count) == (product.pk, 3)
    assert RetiredRow._base_manager.filter(environment=production).count() == 1
    # Production is still exactly the release: the retired row is not configuration.
    assert snapshot_hash(capture(production)) == release.snapshot_hash

    release.refresh_from_db()
    rollback = release_rollback(
        environment=tenant.staging, release=release, actor=people.it, reason="Name confuses"
    )
    assert rollback.state == Release.State.DEPLOYED
    product.refresh_from_db()
    assert product.is_active
    assert product.name == "HELOC"
    assert list(
        OfferProduct._base_manager.filter(environment=production).values_list("name", flat=True)
    ) == ["HELOC"]
    state.refresh_from_db()
    assert (state.product_id, state.view_count, state.selected_at) == (product.pk, 3, selected_at)
    assert not RetiredRow._base_manager.filter(environment=production).exists()
    assert snapshot_hash(capture(production)) == rollback.snapshot_hash


@pytest.mark.django_db
def test_release__removed_product_without_member_data__is_deleted(tenant, people, clock, window):
    OfferProductFactory(environment=tenant.production, name="Old HELOC")
    release = approved(tenant, people)
    removed = next(e for e in release.diff if e["change"] == "removed")
    assert "note" not in removed
    clock.set(window)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert not OfferProduct._base_manager.filter(environment=tenant.production).exists()
    assert not RetiredRow._base_manager.exists()
