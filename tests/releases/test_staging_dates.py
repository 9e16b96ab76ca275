"""The day staging data is computed as of: a mock data set made as of a day has its equity,
LTV and offers computed as of that day (its balances and values are dated then); the
hourly equity tick later moves them to the real today, forward only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import models

from homes.finance.equity import (
    LienTerms,
    balance_after,
    current_balance,
    monthly_payment,
    months_between,
)
from homes.models import Lien, Member, MemberOffer, OfferMatch, Property
from homes.services import properties_recompute
from homes.services.recompute import properties_recompute_stale
from institutions.tenancy import environment_scope
from releases.staging_data import common
from releases.staging_data.common import homes_recompute, no_progress
from releases.staging_data.mock import mock_data_generate
from releases.staging_data.regions import REGIONS
from tests.homes.factories import LienFactory, OfferProductFactory, PropertyFactory

AS_OF = dt.date(2025, 6, 10)
FIGURES = ("lien_balance", "equity", "ltv", "cltv", "borrowing_power")


def local(tenant, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tenant.institution.tz)


def home_with_lien(environment, *, balance_as_of: dt.date) -> Property:
    """A $500,000 home with a $200,000 30-year mortgage at 6% ($1,199.10 a month) that owed
    $180,000.00 on `balance_as_of`."""
    prop = PropertyFactory(environment=environment)
    LienFactory(
        environment=environment,
        property=prop,
        original_amount=Decimal("200000.00"),
        rate=Decimal("6.000"),
        term_months=360,
        origination_date=dt.date(2020, 1, 1),
        balance=Decimal("180000.00"),
        balance_as_of=balance_as_of,
    )
    Property._base_manager.filter(pk=prop.pk).update(
        value=Decimal("500000"), confidence=80, valued_on=balance_as_of
    )
    return prop


def figures(prop: Property) -> tuple:
    prop.refresh_from_db()
    return prop.lien_balance, prop.equity


@pytest.mark.django_db
def test_homes_recompute__as_of_a_past_day__balances_as_of_that_day_not_today(tenant, clock):
    staging = tenant.staging
    clock.set(local(tenant, 2025, 8, 10, 12, 0))
    prop = home_with_lien(staging, balance_as_of=dt.date(2025, 6, 1))

    homes_recompute(staging, no_progress, today=AS_OF)
    # No payment falls due from June 1 to June 10: the balance is the one on record.
    assert figures(prop) == (Decimal("180000.00"), Decimal("320000.00"))

    homes_recompute(staging, no_progress)  # the institution's today: August 10
    # Two payments of $1,199.10: July, $900.00 interest, $299.10 principal ($179,700.90);
    # August, $898.50 interest, $300.60 principal.
    assert figures(prop) == (Decimal("179400.30"), Decimal("320599.70"))


@pytest.mark.django_db
def test_homes_recompute__run_crosses_midnight__every_home_as_of_the_day_it_started(
    tenant, clock, monkeypatch
):
    staging = tenant.staging
    clock.set(local(tenant, 2025, 6, 30, 23, 59))
    homes = [home_with_lien(staging, balance_as_of=dt.date(2025, 6, 1)) for _ in range(2)]
    monkeypatch.setattr(common, "RECOMPUTE_CHUNK", 1)

    def progress(step: str, done: int, total: int) -> None:
        if done == 1:  # the first home is stored; the institution's July begins
            clock.set(local(tenant, 2025, 7, 1, 0, 1))

    homes_recompute(staging, progress)
    # As of June 30 both: July's payment is not counted for one home and not the other.
    assert [figures(p) for p in homes] == [(Decimal("180000.00"), Decimal("320000.00"))] * 2


@pytest.mark.django_db
def test_homes_recompute__balance_dated_after_the_ticks_today__kept_as_it_is(tenant, clock):
    """Data computed as of a day after the real today (its balances dated after it too):
    the equity tick of the real today keeps those balances, it never amortizes backwards."""
    staging = tenant.staging
    clock.set(local(tenant, 2025, 6, 10, 12, 0))
    prop = home_with_lien(staging, balance_as_of=dt.date(2025, 8, 1))
    homes_recompute(staging, no_progress, today=dt.date(2025, 8, 10))
    assert figures(prop) == (Decimal("180000.00"), Decimal("320000.00"))

    clock.set(local(tenant, 2025, 6, 11, 1, 0))
    with environment_scope(staging):
        assert properties_recompute_stale(environment=staging) == 1
    assert figures(prop) == (Decimal("180000.00"), Decimal("320000.00"))


def stored(environment) -> dict:
    """Every home's stored figures and offers."""
    homes = Property._base_manager.filter(environment=environment).order_by("pk")
    offers = OfferMatch._base_manager.filter(environment=environment).order_by(
        "property_id", "rank"
    )
    return {
        "homes": list(homes.values_list("pk", *FIGURES)),
        "offers": list(
            offers.values_list("property_id", "product_id", "rank", "amount", "rate", "benefit")
        ),
    }


@pytest.mark.django_db
def test_mock_data__as_of_a_past_day__figures_as_of_that_day_then_the_tick_amortizes(
    tenant, clock, products
):
    staging = tenant.staging
    clock.set(local(tenant, 2025, 9, 15, 10, 0))  # three payments after the data's statement
    assert REGIONS["king-county-wa"].sales_file().exists()
    mock_data_generate(
        environment=staging, count=60, seed=7, region="king-county-wa", sales=300, today=AS_OF
    )

    liens = list(Lien._base_manager.filter(environment=staging).order_by("pk"))
    homes = {p.pk: p for p in Property._base_manager.filter(environment=staging)}
    owed: dict[int, Decimal] = {}
    for lien in liens:
        assert lien.balance_as_of <= AS_OF
        # Amortized to the data's day: the payments due since the June statement are off.
        due = current_balance(_terms(lien), AS_OF)
        owed[lien.property_id] = owed.get(lien.property_id, Decimal(0)) + due
    for pk, prop in homes.items():
        assert prop.lien_balance == owed.get(pk, Decimal(0))
        assert prop.equity == prop.value - prop.lien_balance
    # Offers too: exactly what a recompute as of the data's day stores.
    as_generated = stored(staging)
    assert as_generated["offers"]
    with environment_scope(staging):
        properties_recompute(environment=staging, today=AS_OF)
    assert stored(staging) == as_generated

    # A lone amortizing mortgage, to follow by hand through the tick.
    alone = [lien for lien in liens if sum(x.property_id == lien.property_id for x in liens) == 1]
    lien = next(x for x in alone if x.kind == Lien.Kind.FIRST_MORTGAGE and x.rate > 0)
    assert lien.balance_as_of == dt.date(2025, 6, 1)
    as_of_data_day = current_balance(_terms(lien), AS_OF)
    assert homes[lien.property_id].lien_balance == as_of_data_day

    # The next day (in the institution's time zone) the tick computes as of the real today:
    # the payments due since the June 1 statement, by the loan's payment day.
    today = dt.date(2025, 9, 16)
    clock.set(local(tenant, 2025, 9, 16, 0, 30))
    with environment_scope(staging):
        assert properties_recompute_stale(environment=staging) == len(homes)
    payment = monthly_payment(lien.original_amount, lien.rate, lien.term_months)
    due = months_between(lien.origination_date, today) - months_between(
        lien.origination_date, lien.balance_as_of
    )
    assert due >= 3
    prop = Property._base_manager.get(pk=lien.property_id)
    assert prop.lien_balance == balance_after(lien.balance, lien.rate, payment, due)
    assert prop.lien_balance < as_of_data_day
    assert prop.equity == prop.value - prop.lien_balance


@pytest.mark.django_db
def test_mock_data__as_of_a_day_before_2021__no_loan_originated_after_that_day(tenant):
    """Mock data made as of 3 June 2019 (the command's --as-of) describes that day: every
    mortgage was taken out, and its balance known, on or before it."""
    as_of = dt.date(2019, 6, 3)

    _mock_as_of(tenant, as_of)

    liens = Lien._base_manager.filter(environment=tenant.staging)
    assert liens.exists()
    future = liens.filter(
        models.Q(origination_date__gt=as_of) | models.Q(balance_as_of__gt=as_of)
    ).values_list("kind", "origination_date", "balance_as_of")
    assert list(future) == []


@pytest.mark.django_db
def test_mock_data__as_of_a_day_in_2020__refinances_on_or_before_it(tenant):
    """As of a day in the months when many refinanced, some did already, none later."""
    as_of = dt.date(2020, 6, 3)

    _mock_as_of(tenant, as_of)

    firsts = Lien._base_manager.filter(environment=tenant.staging, kind="first_mortgage")
    refinanced = firsts.exclude(origination_date=models.F("property__purchase_date"))
    assert refinanced.filter(origination_date__year=2020).exists()
    assert not firsts.filter(origination_date__gt=as_of).exists()


@pytest.mark.django_db
def test_mock_data__made_in_the_morning__no_login_or_offer_selection_later_than_now(tenant, clock):
    """Mock data made at 9:00 on the institution's today: no member signed in, and no offer
    was selected, after 9:00 that day."""
    moment = local(tenant, 2025, 6, 10, 9, 0)
    clock.set(moment)
    OfferProductFactory(environment=tenant.staging, name="HELOC", min_amount=Decimal(5000))

    mock_data_generate(
        environment=tenant.staging, count=1500, seed=3, region="king-county-wa", sales=500
    )

    members = Member._base_manager.filter(environment=tenant.staging)
    offers = MemberOffer._base_manager.filter(environment=tenant.staging)
    assert members.filter(last_login_at__isnull=False).exists()
    assert offers.filter(selected_at__isnull=False).exists()
    later = {
        "logins": sorted(
            members.filter(last_login_at__gt=moment).values_list("last_login_at", flat=True)
        ),
        "selections": sorted(
            offers.filter(selected_at__gt=moment).values_list("selected_at", flat=True)
        ),
        "views": sorted(
            offers.filter(first_viewed_at__gt=moment).values_list("first_viewed_at", flat=True)
        ),
    }
    assert later == {"logins": [], "selections": [], "views": []}
    # Today's sign-ins so far are all in the morning.
    today = members.filter(last_login_at__date=dt.date(2025, 6, 10))
    assert all(m.last_login_at <= moment for m in today)


@pytest.mark.django_db
def test_mock_data__as_of_a_past_day__nothing_dated_after_its_end_in_the_institutions_zone(
    tenant, clock
):
    """Data made as of a past day: its logins and selections end with that day where the
    institution is, not with that day in UTC."""
    clock.set(local(tenant, 2025, 9, 15, 10, 0))
    Institution = type(tenant.institution)
    Institution.objects.filter(pk=tenant.institution.pk).update(time_zone="Pacific/Auckland")
    tenant.institution.refresh_from_db()
    tenant.staging.refresh_from_db()
    OfferProductFactory(environment=tenant.staging, name="HELOC", min_amount=Decimal(5000))

    mock_data_generate(
        environment=tenant.staging,
        count=800,
        seed=3,
        region="king-county-wa",
        sales=300,
        today=AS_OF,
    )

    day_end = dt.datetime(2025, 6, 11, tzinfo=ZoneInfo("Pacific/Auckland"))
    members = Member._base_manager.filter(environment=tenant.staging)
    offers = MemberOffer._base_manager.filter(environment=tenant.staging)
    assert members.filter(last_login_at__isnull=False).exists()
    assert not members.filter(last_login_at__gte=day_end).exists()
    assert not offers.filter(selected_at__gte=day_end).exists()


def _terms(lien: Lien) -> LienTerms:
    return LienTerms(
        position=lien.position,
        kind=lien.kind,
        original_amount=lien.original_amount,
        rate=lien.rate,
        term_months=lien.term_months,
        origination_date=lien.origination_date,
        balance=lien.balance,
        balance_as_of=lien.balance_as_of,
    )


def _mock_as_of(tenant, as_of: dt.date) -> None:
    """Mock data of 300 members made as of the given day (the command's --as-of)."""
    mock_data_generate(
        environment=tenant.staging,
        count=300,
        seed=7,
        region="king-county-wa",
        sales=500,
        today=as_of,
    )
