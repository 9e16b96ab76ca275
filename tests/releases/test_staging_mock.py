"""Mock staging data: realistic members, homes, liens, value history and recorded sales for a
region, at a chosen volume, reproducible from a seed, with a progress bar."""

from __future__ import annotations

import datetime as dt
import io
import statistics
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import models

from homes.models import (
    Lien,
    Member,
    MemberOffer,
    OfferMatch,
    Property,
    Sale,
    Valuation,
)
from institutions.models import AuditEntry
from releases.services import ReleaseRefused
from releases.staging_data.mock import mock_data_generate
from releases.staging_data.regions import REGIONS
from tests.factories import MemberFactory

TODAY = dt.date(2025, 6, 10)
KING_COUNTY = REGIONS["king-county-wa"]


@pytest.fixture
def sales_data():
    return KING_COUNTY.sales_file()


def generate(tenant, **kwargs):
    options = {"count": 400, "seed": 7, "region": "king-county-wa", "sales": 1500}
    return mock_data_generate(environment=tenant.staging, today=TODAY, **{**options, **kwargs})


def data_set(environment) -> dict[str, list[tuple]]:
    """Every generated row as plain values: no ids, foreign keys by the external id of what
    they point to, no moment of insertion."""
    found = {}
    for model in (Member, Property, Lien, Valuation, Sale):
        names = []
        for f in model._meta.concrete_fields:
            if f.primary_key or f.name == "environment" or getattr(f, "auto_now_add", False):
                continue
            if getattr(f, "auto_now", False) or f.name == "computed_at":
                continue
            if isinstance(f, models.ForeignKey):
                names.append(f"{f.name}__external_id")
            else:
                names.append(f.name)
        rows = model._base_manager.filter(environment=environment).values_list(*names)
        found[model._meta.label] = sorted(rows, key=repr)
    return found


@pytest.mark.django_db
def test_mock_data__same_seed_and_day__identical_data__another_seed_differs(tenant, sales_data):
    steps = []
    result = generate(tenant, progress=lambda step, done, total: steps.append((step, done)))
    first = data_set(tenant.staging)
    assert result.members == 400 == len(first["homes.Member"])
    assert ("members", 400) in steps
    assert ("recorded sales", 1500) in steps
    assert len(first["homes.Valuation"]) == 13 * len(first["homes.Property"])

    generate(tenant)  # replaces staging's member data with the same data set
    assert data_set(tenant.staging) == first

    generate(tenant, seed=8)
    other = data_set(tenant.staging)
    assert other["homes.Member"] != first["homes.Member"]
    assert other["homes.Property"] != first["homes.Property"]


@pytest.mark.django_db
def test_mock_data__realistic_homes_liens_history_and_sales(tenant, sales_data, products):
    result = generate(tenant, count=600)
    env = tenant.staging
    members = Member._base_manager.filter(environment=env)
    props = list(Property._base_manager.filter(environment=env))
    liens = list(Lien._base_manager.filter(environment=env).select_related("property"))
    assert members.count() == 600
    assert all(m.email.endswith("@staging-sink.invalid") for m in members)
    assert 0 < members.filter(is_test=True).count() < 60  # a small test cohort
    assert 500 < len(props) < 600  # most members own their home; a few do not
    cities = set(KING_COUNTY.cities.values()) | {KING_COUNTY.default_city}
    for p in props:
        assert 47.0 < p.latitude < 47.9
        assert -122.6 < p.longitude < -121.2
        assert p.city in cities
        assert p.state == "WA"
        assert p.postal_code.startswith("98")
        assert p.living_sqft >= 400
        assert p.bedrooms is not None
        assert p.year_built is not None
        assert p.grade is not None
        assert p.condition is not None
        assert p.purchase_date < TODAY
        assert p.purchase_price > 0
        assert 100_000 < p.value < 20_000_000
        assert p.value % 1000 == 0
        assert p.value_low <= p.value <= p.value_high
        assert p.equity == p.value - p.lien_balance  # equity computed after generation
    # Values moved with the market since purchase: mostly up over a decade.
    old = [p for p in props if p.purchase_date.year <= 2015]
    assert sum(p.value > p.purchase_price for p in old) > 0.9 * len(old)

    kinds = [lien.kind for lien in liens]
    firsts = [lien for lien in liens if lien.kind == "first_mortgage"]
    assert 0.6 * len(props) < len(firsts) < 0.95 * len(props)  # some homes are paid off
    assert kinds.count("heloc") > 0.03 * len(props)
    assert "second_mortgage" in kinds
    for lien in liens:
        assert lien.origination_date <= lien.balance_as_of <= TODAY
        assert lien.origination_date >= lien.property.purchase_date
        if lien.kind != "heloc":
            assert 0 < lien.balance <= lien.original_amount  # amortized, never above
    for lien in firsts:
        rate = float(lien.rate)
        assert 2.25 <= rate <= 14
    recent = [lien for lien in firsts if lien.origination_date.year >= 2023]
    low_era = [lien for lien in firsts if lien.origination_date.year in (2020, 2021)]
    assert statistics.mean(float(x.rate) for x in recent) > statistics.mean(
        float(x.rate) for x in low_era
    )  # the rates of their years
    assert any(lien.pmi_monthly > 0 for lien in firsts)
    cltvs = sorted(p.cltv for p in props)
    assert Decimal("0.15") < cltvs[len(cltvs) // 2] < Decimal("0.75")

    history = Valuation._base_manager.filter(property=props[0]).order_by("as_of")
    assert history.count() == 13
    assert history.last().as_of == TODAY
    assert history.last().value == props[0].value

    sales = Sale._base_manager.filter(environment=env)
    assert sales.count() == 1500
    assert all(TODAY - dt.timedelta(days=366) < s.sale_date < TODAY for s in sales)
    assert all(s.address.endswith(", WA") for s in sales[:50])

    # The dashboards have offers, and lending's engagement view has something to show.
    assert OfferMatch._base_manager.filter(environment=env).count() > 100
    assert MemberOffer._base_manager.filter(environment=env, first_viewed_at__isnull=False).exists()
    assert result.counts["engaged"] > 0
    entry = AuditEntry.objects.get(environment=env, object_repr__startswith="Staging replaced")
    assert entry.changes["seed"] == 7
    assert entry.changes["members"] == 600


@pytest.mark.django_db
def test_mock_data__replaces_staging_members_only_in_staging(tenant, sales_data, people):
    old = MemberFactory(environment=tenant.staging)
    real = MemberFactory(environment=tenant.production)
    generate(tenant, count=20, actor=people.it)
    assert not Member._base_manager.filter(pk=old.pk).exists()
    assert Member._base_manager.filter(environment=tenant.staging).count() == 20
    assert list(Member._base_manager.filter(environment=tenant.production)) == [real]


@pytest.mark.django_db
def test_mock_data__refusals__nothing_changes(tenant, people, sales_data, monkeypatch):
    kept = MemberFactory(environment=tenant.staging)
    refusals = [
        ({"environment": tenant.production}, "staging only"),
        ({"actor": people.marketing}, "IT or admin"),
        ({"region": "atlantis"}, "Unknown region"),
        ({"count": 0}, "between 1 and"),
        ({"history_months": 61}, "months of value history"),
        (
            {"today": tenant.institution.today() + dt.timedelta(days=1)},
            "after the institution's today",
        ),
    ]
    for change, message in refusals:
        options = {"environment": tenant.staging, "count": 5, "seed": 1, "region": "king-county-wa"}
        with pytest.raises(ReleaseRefused, match=message):
            mock_data_generate(**{**options, **change})
    monkeypatch.setenv("CHIMNEY_SALES_CSV", "/nonexistent/sales.csv")
    with pytest.raises(ReleaseRefused, match="recorded sales of King County"):
        generate(tenant)
    assert list(Member._base_manager.filter(environment=tenant.staging)) == [kept]


@pytest.mark.django_db
def test_staging_mock_command__prints_a_progress_bar_per_step(tenant, sales_data):
    out = io.StringIO()
    slug = tenant.institution.slug
    call_command(
        "staging_mock", "--institution", slug, "--environment", "staging", "--count", "20",
        "--seed", "3", "--sales", "300", "--as-of", "2025-06-10", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "members              [##############################] 100% 20/20" in text
    assert "recorded sales       [##############################] 100% 300/300" in text
    assert "Mock data for King County, Washington: 20 members" in text
    with pytest.raises(CommandError, match="staging only"):
        call_command("staging_mock", "--institution", slug, "--environment", "production")
