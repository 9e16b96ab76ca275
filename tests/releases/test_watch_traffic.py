"""Scenario 3 with real traffic: the offer page fails after a deploy, the request metrics
the middleware records cross the fail threshold, the oracle fails the watch, production
rolls back by itself and the signers are told why."""

from __future__ import annotations

import datetime as dt

import pytest

from flags import request_metrics
from institutions.selectors import environment_branding
from releases.models import Release
from releases.services import release_deploy
from releases.tasks import watch_due
from tests.conftest import member_client
from tests.factories import MemberFactory
from tests.homes.factories import OfferProductFactory, home_settings_factory
from tests.homes.test_member_pages import _home
from tests.releases.test_release_flow import TUESDAY_23, approved

pytestmark = pytest.mark.django_db


def _home_in_both(tenant):
    """The member's home and offer in production, the same configuration in staging."""
    member = MemberFactory(environment=tenant.production)
    _prop, (product,) = _home(member)
    home_settings_factory(tenant.staging, min_confidence=50)
    OfferProductFactory(
        environment=tenant.staging, name=product.name, title=product.title, max_existing_liens=9
    )
    return member, product


def _bad_release_deployed(tenant, people, clock, capture):
    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    with capture(execute=True):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    return release


def _failing_offer_traffic(home, monkeypatch, clock, requests=200, failing_every=4):
    member, product = home
    client = member_client(member)
    client.raise_request_exception = False
    real = __import__("homes.appointment_selectors", fromlist=["x"]).offer_can_book
    calls = {"n": 0}

    def sometimes_broken(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] % failing_every == 0:
            raise RuntimeError("the new offer copy broke the page")
        return real(*args, **kwargs)

    monkeypatch.setattr("homes.member_views.appointment_selectors.offer_can_book", sometimes_broken)
    clock.set(TUESDAY_23 + dt.timedelta(minutes=2))
    statuses = [client.get(f"/offers/{product.pk}/").status_code for _ in range(requests)]
    request_metrics.flush()
    return statuses


def test_scenario_3__default_policy__failed_watch_rolls_production_back_by_itself(
    tenant, people, clock, monkeypatch, django_capture_on_commit_callbacks
):
    """On an institution as it comes: the release policy is the default one."""
    home = _home_in_both(tenant)
    release = _bad_release_deployed(tenant, people, clock, django_capture_on_commit_callbacks)
    statuses = _failing_offer_traffic(home, monkeypatch, clock)
    assert statuses.count(500) == 50
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        watch_due()
    release.refresh_from_db()
    assert release.watch_state == Release.Watch.FAILED, release.watch_verdict
    assert release.state == Release.State.ROLLED_BACK
    assert environment_branding(tenant.production).primary_color == "#1f4e79"
