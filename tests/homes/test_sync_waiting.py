"""Work a sync asked for is marked on its homes: the valuation or recompute that does it
clears the mark, unless a later sync marked the home again after the work read it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from homes.models import Property
from homes.services.recompute import Recomputer, home_rows
from homes.services.sync import properties_refresh_waiting
from homes.services.valuations import Revaluer
from institutions.tenancy import environment_scope
from tests.homes.factories import PropertyFactory, home_settings_factory


def _marks(prop) -> tuple:
    prop.refresh_from_db()
    return prop.valuation_requested_at, prop.recompute_requested_at


@pytest.mark.django_db
def test_work_done__clears_the_marks_it_read__not_a_later_syncs(tenant):
    env = tenant.staging
    home_settings_factory(env, provider_order=["mock"])
    synced = timezone.now() - timedelta(minutes=1)
    later = timezone.now()
    with environment_scope(env):
        homes = [PropertyFactory(environment=env) for _ in range(3)]
        Property.objects.filter(pk__in=[h.pk for h in homes]).update(
            valuation_requested_at=synced, recompute_requested_at=synced
        )
        rows = home_rows(env)  # what the work reads
        # A sync changes the last home after that read: its work is still to come.
        Property.objects.filter(pk=homes[2].pk).update(valuation_requested_at=later)

        Recomputer(env).apply_rows(rows)  # a recompute does not value
        assert [_marks(h) for h in homes] == [(synced, None), (synced, None), (later, None)]

        Revaluer(env).revalue_rows(home_rows(env, ids=[homes[0].pk]))
        assert _marks(homes[0]) == (None, None)
        Property.objects.filter(pk=homes[1].pk).update(valuation_requested_at=later)
        Revaluer(env).revalue_rows(rows[1:2])  # read before the sync marked it again
        assert _marks(homes[1]) == (later, None)


@pytest.mark.django_db
def test_refresh_waiting__does_only_work_left_past_the_grace_period(tenant):
    env = tenant.staging
    home_settings_factory(env, provider_order=["mock"])
    with environment_scope(env):
        lost, fresh, recompute = (PropertyFactory(environment=env) for _ in range(3))
        old = timezone.now() - timedelta(hours=1)
        Property.objects.filter(pk=lost.pk).update(valuation_requested_at=old)
        Property.objects.filter(pk=fresh.pk).update(valuation_requested_at=timezone.now())
        Property.objects.filter(pk=recompute.pk).update(recompute_requested_at=old)

        assert properties_refresh_waiting(environment=env) == {
            "revalued": 1,
            "recomputed": 1,
            "runs_closed": 0,
        }
        lost.refresh_from_db()
        assert lost.value is not None
        assert _marks(lost) == (None, None)
        assert _marks(recompute) == (None, None)
        assert _marks(fresh)[0] is not None  # its own task may still come
        assert properties_refresh_waiting(environment=env) == {
            "revalued": 0,
            "recomputed": 0,
            "runs_closed": 0,
        }
