import pytest

from homes.models import OfferMatch, Property, Sale, Valuation
from institutions.demo import demo_load
from institutions.models import Environment
from institutions.tenancy import environment_scope


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_load__homes_with_sales_values_history_and_offers__idempotent():
    demo_load()
    counts = {}
    for env in Environment.objects.all():
        with environment_scope(env):
            counts[env.pk] = (Property.objects.count(), Valuation.objects.count())
            assert Sale.objects.count() == 17233
            assert Property.objects.filter(value__isnull=False).count() == 12
            assert Valuation.objects.count() > 12 * 20  # a value history for the chart
            assert OfferMatch.objects.filter(product__kind="heloc").exists()
    demo_load()
    for env in Environment.objects.all():
        with environment_scope(env):
            assert (Property.objects.count(), Valuation.objects.count()) == counts[env.pk]
