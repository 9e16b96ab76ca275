import datetime
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from homes.models import Lien, OfferMatch, OfferProduct, Property
from homes.services import lien_save, offer_product_save, properties_recompute
from tests.homes.factories import (
    LienFactory,
    OfferProductFactory,
    PropertyFactory,
    home_settings_factory,
)

pytestmark = pytest.mark.django_db
TODAY = datetime.date.today()  # noqa: DTZ011


def _lien(prop, **kw):
    fields = {
        "property": prop, "position": 1, "kind": "first_mortgage", "original_amount": D(200000),
        "rate": D(6), "term_months": 360, "origination_date": datetime.date(2020, 1, 1),
        "balance": D(200000), "balance_as_of": TODAY,
    }  # fmt: skip
    fields.update(kw)
    return Lien(**fields)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"balance": D(-1)}, "balance", "negative"),
        ({"rate": D("100.5")}, "rate", "over 100%"),
        ({"origination_date": TODAY + datetime.timedelta(days=3)}, "origination_date", "future"),
    ],
)
def test_lien_save__impossible_values__refused_naming_the_field(scoped, changes, field, text):
    prop = PropertyFactory(environment=scoped)
    with pytest.raises(ValidationError) as info:
        lien_save(environment=scoped, lien=_lien(prop, **changes))
    assert text in " ".join(info.value.message_dict[field])
    assert not Lien.objects.exists()


def test_lien_save__recomputes_equity_and_matches(scoped):
    prop = PropertyFactory(environment=scoped)
    Property.objects.filter(pk=prop.pk).update(value=D(300000), confidence=80)
    product = OfferProductFactory(environment=scoped)
    lien_save(environment=scoped, lien=_lien(prop), actor=None)
    prop.refresh_from_db()
    assert prop.equity == D(100000)
    assert prop.borrowing_power == D(40000)  # 300,000 x 0.80 - 200,000
    match = OfferMatch.objects.get(property=prop)
    assert (match.product, match.rank, match.amount) == (product, 1, D(40000))


def test_offer_product__min_over_max__refused_naming_the_field(scoped):
    product = OfferProductFactory.build(
        environment=scoped, min_amount=D(50000), max_amount=D(10000)
    )
    with pytest.raises(ValidationError) as info:
        offer_product_save(environment=scoped, product=product)
    assert "more than the maximum" in info.value.message_dict["min_amount"][0]
    assert not OfferProduct.objects.exists()


def test_offer_product__trigger_terms_without_disclosures__refused_saying_what_is_missing(scoped):
    product = OfferProductFactory.build(
        environment=scoped,
        summary="Payments as low as $199 a month for 10 years, at prime minus 0.5%!",
        rate_type="indexed",
        apr=None,
        margin=D("-0.5"),
        rate_cap=D(18),
        disclosures="",
    )
    with pytest.raises(ValidationError) as info:
        offer_product_save(environment=scoped, product=product)
    message = info.value.message_dict["disclosures"][0]
    for needed in ("a stated payment", "a term in years", "prime minus", "APR", "repayment"):
        assert needed in message
    product.disclosures = (
        "APR is variable: 7.0% today, maximum 18%. Introductory rate for 6 months, then "
        "prime + 0%. Repayment term 10 years after a 10-year draw."
    )
    offer_product_save(environment=scoped, product=product)
    assert OfferProduct.objects.count() == 1


def test_home_settings__year_built_min_over_max__refused(scoped):
    settings = home_settings_factory(scoped)
    settings.year_built_min, settings.year_built_max = 2000, 1990
    with pytest.raises(ValidationError) as info:
        settings.full_clean()
    assert "after the maximum" in info.value.message_dict["year_built_min"][0]


def test_properties_recompute__stale_balance__amortized_and_line_capped(scoped):
    home_settings_factory(scoped)
    prop = PropertyFactory(environment=scoped)
    Property.objects.filter(pk=prop.pk).update(value=D(1000000), confidence=90)
    LienFactory(
        environment=scoped,
        property=prop,
        origination_date=TODAY.replace(year=TODAY.year - 2),
        balance_as_of=TODAY.replace(year=TODAY.year - 1),
        balance=D(200000),
    )
    OfferProductFactory(environment=scoped, max_amount=D(250000))
    properties_recompute(environment=scoped)
    prop.refresh_from_db()
    assert prop.lien_balance == D("197543.99")  # 12 payments after the known balance
    assert prop.borrowing_power == D(250000)  # 800,000 - 197,543.99 capped at the max line
