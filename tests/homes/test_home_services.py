import datetime
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from homes.models import Lien, OfferMatch, OfferProduct, Property
from homes.services import (
    home_settings_save,
    lien_save,
    offer_product_save,
    properties_recompute,
    property_save,
)
from homes.services.recompute import properties_recompute_stale
from institutions.tenancy import environment_scope
from tests.conftest import make_tenant
from tests.homes.factories import (
    LienFactory,
    OfferProductFactory,
    PropertyFactory,
    home_settings_factory,
    institution_today,
    years_after,
    zone_off_utc_date,
)

pytestmark = pytest.mark.django_db


def _lien(prop, **kw):
    fields = {
        "property": prop, "position": 1, "kind": "first_mortgage", "original_amount": D(200000),
        "rate": D(6), "term_months": 360, "origination_date": datetime.date(2020, 1, 1),
        "balance": D(200000), "balance_as_of": institution_today(prop.environment),
    }  # fmt: skip
    fields.update(kw)
    return Lien(**fields)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        (lambda today: {"balance": D(-1)}, "balance", "negative"),
        (lambda today: {"rate": D("100.5")}, "rate", "over 100%"),
        (
            lambda today: {"origination_date": today + datetime.timedelta(days=3)},
            "origination_date",
            "future",
        ),
    ],
)
def test_lien_save__impossible_values__refused_naming_the_field(scoped, changes, field, text):
    prop = PropertyFactory(environment=scoped)
    with pytest.raises(ValidationError) as info:
        lien_save(environment=scoped, lien=_lien(prop, **changes(institution_today(scoped))))
    assert text in " ".join(info.value.message_dict[field])
    assert not Lien.objects.exists()


def _save_dated(environment, field: str, day: datetime.date):
    """A new home with this purchase date, or a lien of a new home originated that day."""
    if field == "purchase_date":
        prop = PropertyFactory.build(environment=environment, member=None, purchase_date=day)
        return property_save(environment=environment, prop=prop, revalue=False)
    prop = PropertyFactory(environment=environment)
    return lien_save(
        environment=environment, lien=_lien(prop, origination_date=day, balance_as_of=day)
    )


@pytest.mark.parametrize("field", ["purchase_date", "origination_date"])
def test_dates__judged_by_the_institutions_today__not_utcs(db, field):
    """An institution whose date is not UTC's now (a day behind: its tomorrow is UTC's
    today; or a day ahead: its today is UTC's tomorrow). Its today is accepted, its
    tomorrow refused, with the same error on the same field."""
    environment = make_tenant(time_zone=zone_off_utc_date()).production
    today = institution_today(environment)
    assert today != timezone.now().date()
    with environment_scope(environment):
        _save_dated(environment, field, today)
        model = Property if field == "purchase_date" else Lien
        before = model.objects.count()
        with pytest.raises(ValidationError) as info:
            _save_dated(environment, field, today + datetime.timedelta(days=1))
        assert info.value.message_dict[field] == ["Cannot be in the future."]
        assert model.objects.count() == before


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
    today = institution_today(scoped)
    LienFactory(
        environment=scoped,
        property=prop,
        origination_date=years_after(today, -2),
        balance_as_of=years_after(today, -1),
        balance=D(200000),
    )
    OfferProductFactory(environment=scoped, max_amount=D(250000))
    properties_recompute(environment=scoped)
    prop.refresh_from_db()
    assert prop.lien_balance == D("197543.99")  # 12 payments after the known balance
    assert prop.borrowing_power == D(250000)  # 800,000 - 197,543.99 capped at the max line


def test_lien_save__moved_to_another_home__both_homes_recomputed(scoped):
    home_settings_factory(scoped)
    first, second = PropertyFactory(environment=scoped), PropertyFactory(environment=scoped)
    Property.objects.filter(pk__in=[first.pk, second.pk]).update(value=D(300000), confidence=80)
    lien = lien_save(environment=scoped, lien=_lien(first))
    first.refresh_from_db()
    assert first.lien_balance == D(200000)
    lien.property = second
    lien_save(environment=scoped, lien=lien)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.lien_balance, first.equity) == (D(0), D(300000))
    assert (second.lien_balance, second.equity) == (D(200000), D(100000))


def test_saves__taken_name_or_lien_position__refused_naming_the_fields(scoped):
    prop = PropertyFactory(environment=scoped)
    lien_save(environment=scoped, lien=_lien(prop))
    with pytest.raises(ValidationError) as info:
        lien_save(environment=scoped, lien=_lien(prop, balance=D(1000)))
    assert info.value.messages == ["Lien with this Property and Position already exists."]
    assert Lien.objects.count() == 1
    OfferProductFactory(environment=scoped, name="HELOC")
    with pytest.raises(ValidationError) as info:
        offer_product_save(environment=scoped, product=OfferProductFactory.build(name="HELOC"))
    assert "Name already exists" in str(info.value)
    assert OfferProduct.objects.count() == 1


def test_saves__same_name_in_another_environment__allowed(scoped, tenant):
    OfferProductFactory(environment=tenant.staging, name="HELOC")
    offer_product_save(environment=scoped, product=OfferProductFactory.build(name="HELOC"))
    assert OfferProduct.objects.filter(name="HELOC").count() == 1  # this environment's


def test_home_settings__mock_provider__refused_in_production_only(scoped, tenant):
    settings = home_settings_factory(scoped)
    settings.provider_order = ["comparable", "mock"]
    with pytest.raises(ValidationError) as info:
        home_settings_save(environment=scoped, settings=settings)
    assert "mock provider is for staging" in info.value.message_dict["provider_order"][0]
    staging = home_settings_factory(tenant.staging)
    staging.provider_order = ["comparable", "mock"]
    home_settings_save(environment=tenant.staging, settings=staging)


def test_properties_recompute_stale__homes_not_computed_today__follow_amortization(scoped):
    home_settings_factory(scoped)
    prop = PropertyFactory(environment=scoped)
    Property.objects.filter(pk=prop.pk).update(value=D(300000), confidence=80)
    today = institution_today(scoped)
    LienFactory(
        environment=scoped, property=prop, origination_date=datetime.date(2020, 1, 1),
        balance_as_of=today, balance=D(200000),
    )  # fmt: skip
    properties_recompute(environment=scoped)
    prop.refresh_from_db()
    assert prop.equity == D(100000)
    assert properties_recompute_stale(environment=scoped) == 0  # computed today already
    next_year = years_after(today, 1)
    assert properties_recompute_stale(environment=scoped, today=next_year) == 1
    prop.refresh_from_db()
    assert prop.lien_balance == D("197543.99")  # 12 payments at 6% on 200,000 over 360
    assert prop.equity == D("102456.01")


def test_properties_recompute_stale__day_starts_at_the_institutions_midnight(db):
    """A home last computed just before the institution's midnight is stale, one computed
    just after is not, wherever UTC's midnight falls."""
    environment = make_tenant(time_zone=zone_off_utc_date()).production
    home_settings_factory(environment)
    midnight = datetime.datetime.combine(
        institution_today(environment), datetime.time.min, tzinfo=environment.institution.tz
    )
    minute = datetime.timedelta(minutes=1)
    before, after = (
        PropertyFactory(environment=environment),
        PropertyFactory(environment=environment),
    )
    with environment_scope(environment):
        Property.objects.filter(pk=before.pk).update(computed_at=midnight - minute)
        Property.objects.filter(pk=after.pk).update(computed_at=midnight + minute)
        assert properties_recompute_stale(environment=environment) == 1
        assert Property.objects.get(pk=after.pk).computed_at == midnight + minute
        assert Property.objects.get(pk=before.pk).computed_at > midnight


def test_equity_tick__recomputes_the_stale_homes_of_every_environment(tenant):
    from homes.tasks import equity_tick

    homes = {}
    for environment in (tenant.staging, tenant.production):
        home_settings_factory(environment)
        homes[environment.pk] = prop = PropertyFactory(environment=environment)
        with environment_scope(environment):
            Property.objects.filter(pk=prop.pk).update(value=D(300000), computed_at=None)
    out = equity_tick()
    assert out[tenant.staging.pk] == 1
    assert out[tenant.production.pk] == 1
    assert equity_tick()[tenant.production.pk] == 0
    for environment in (tenant.staging, tenant.production):
        with environment_scope(environment):
            assert Property.objects.get(pk=homes[environment.pk].pk).equity == D(300000)


@pytest.mark.parametrize(
    ("copy", "trigger"),
    [
        ("Only $99 monthly", "a stated payment"),
        ("Just $250 every month", "a stated payment"),
        ("Pay it back over 180 months", "a repayment period"),
        ("A term of 120 months", "a repayment period"),
        ("Repay in 120 monthly installments", "a number of payments"),
        ("Payments starting at $199.", "a stated payment"),
        ("Fixed rate for a 120-month term.", "a repayment period"),
        ("Borrow with a 180-month repayment period.", "a repayment period"),
        ("Prime \u2212 0.25% for well-qualified borrowers", '"prime minus"'),
        # Written the way advertising writes them: in words, with other signs and units,
        # or with characters that show nothing (a zero-width space) inside.
        ("Pay only 199 dollars a month.", "a stated payment"),
        ("Monthly payment: $199.", "a stated payment"),
        ("Just \uff04199/mo.", "a stated payment"),
        ("Only $199/mth.", "a stated payment"),
        ("Only $1\u200b99 a month.", "a stated payment"),
        ("Pay it back over thirty years.", "a term in years"),
        ("A fifteen-year fixed loan.", "a term in years"),
        ("Take up to 180 months to repay.", "a repayment period"),
        ("Just 60 easy payments.", "a number of payments"),
        ("Finance charges as low as $0.", "a finance charge"),
        ("Only 10% down.", "a down payment"),
        ("$0 down!", "a down payment"),
        ("Now 0.50% below prime for your first year.", '"prime minus"'),
    ],
)
def test_offer_product__other_phrasings_of_trigger_terms__refused(scoped, copy, trigger):
    product = OfferProductFactory.build(summary=copy, disclosures="")
    with pytest.raises(ValidationError) as info:
        offer_product_save(environment=scoped, product=product)
    assert trigger in info.value.message_dict["disclosures"][0]
    assert not OfferProduct.objects.exists()


def test_offer_product__introductory_period_alone__is_not_a_trigger_term(scoped):
    product = OfferProductFactory.build(summary="3.99% APR for 12 months", disclosures="")
    offer_product_save(environment=scoped, product=product)
    assert OfferProduct.objects.count() == 1


@pytest.mark.parametrize(
    "copy",
    [
        "Borrow against your home when you need it.",
        "Open 24 hours",
        "Lower your monthly payment.",
        "Borrow up to 250,000 dollars.",
        "Rates are 0.5% down from last month.",
        "One lump sum at a fixed rate you can plan around.",
    ],
)
def test_offer_product__ordinary_copy__is_not_a_trigger_term(scoped, copy):
    product = OfferProductFactory.build(summary=copy, disclosures="")
    offer_product_save(environment=scoped, product=product)
    assert OfferProduct.objects.count() == 1


def _valued_home(env, *, value, liens):
    """A home valued at `value` with these (kind, balance, PMI a month) liens, positions in
    order, each balance known as of today."""
    home_settings_factory(env, min_confidence=50)
    prop = PropertyFactory(environment=env)
    for position, (kind, balance, pmi) in enumerate(liens, start=1):
        LienFactory(
            environment=env, property=prop, position=position, kind=kind,
            original_amount=max(balance, D(1000)), balance=balance, pmi_monthly=pmi,
        )  # fmt: skip
    Property.objects.filter(pk=prop.pk).update(
        value=value, value_low=value - 10000, value_high=value + 10000, confidence=80,
        valued_on=institution_today(env),
    )  # fmt: skip
    return prop


def test_pmi_removal__ltv_just_above_80_percent__not_offered(scoped):
    """PMI removal needs an LTV of at most 80%: $240,012 owed on a $300,000 home is an LTV
    of 80.004%, above the limit (rounding the LTV to 80.00% must not make it eligible)."""
    prop = _valued_home(scoped, value=D(300000), liens=[("first_mortgage", D(240012), D(120))])
    pmi = OfferProductFactory(
        environment=scoped, name="PMI", kind=OfferProduct.Kind.PMI_REMOVAL, title="Drop your PMI"
    )
    properties_recompute(environment=scoped)
    assert not OfferMatch.objects.filter(property=prop, product=pmi).exists()


def test_heloc_lien_limit__paid_off_first_mortgage__not_counted_as_a_lien(scoped):
    """A HELOC for homes with at most one lien: a home whose first mortgage is paid off
    (its servicer reports a zero balance) and that has a $50,000 second mortgage has one
    lien left, and is offered $300,000 x 0.80 - $50,000 = $190,000."""
    prop = _valued_home(
        scoped,
        value=D(300000),
        liens=[("first_mortgage", D(0), D(0)), ("second_mortgage", D(50000), D(0))],
    )
    heloc = OfferProductFactory(environment=scoped, max_existing_liens=1)
    properties_recompute(environment=scoped)
    match = OfferMatch.objects.filter(property=prop, product=heloc).first()
    assert match is not None, "no HELOC offered: the paid-off mortgage counted as a lien"
    assert match.amount == D(190000)
