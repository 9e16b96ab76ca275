"""Scenario 8: IT copies production into staging anonymized. No production name, email,
phone or street address can be found anywhere in staging afterwards, and the staging
dashboards still look like real data."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from homes.models import Lien, Member, MemberOffer, OfferMatch, Property, Sale, Valuation
from homes.services import properties_recompute
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from releases.models import StagingDataKey
from releases.services import ReleaseRefused
from releases.snapshot import capture, snapshot_hash
from releases.staging_data import anonymize
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.copying import CopySpec
from releases.staging_data.pseudonyms import Pseudonyms
from tests.factories import MemberFactory
from tests.flags.factories import FlagFactory
from tests.homes.factories import (
    LienFactory,
    MemberOfferFactory,
    OfferProductFactory,
    PropertyFactory,
    SaleFactory,
    ValuationFactory,
    VendorValueFactory,
)
from tests.releases import models as test_models
from tests.releases.scan import scan

# Avery Lindqvist's names are also in the pseudonym pools: they must be avoided there.
REAL = [
    ("Zebulon", "Quickfeather", "Zeb.Quickfeather@gmail.example", "CORE-000117", "1204 Pine St"),
    ("Marisela", "Oyelaran-Brandt", "m.oyelaran@outlook.example", "CORE-000118", "77 Juniper Ln"),
    ("Avery", "Lindqvist", "avery.l@fastmail.example", "CORE-000119", "15020 NE 45th St"),
]
SOLD = ["1204 Pine St, Seattle, WA 98101", "903 Alder St, Seattle, WA 98122"]
PHONE = "+1 (206) 555-7788"
CONTACT = {
    "external_id": "CORE-C-9",
    "first_name": "Henrietta",
    "last_name": "Quickfeather",
    "mobile_phone": PHONE,
    "email": "henrietta@quickfeather.example",
    "mailing_address": "PO Box 4471, Seattle WA 98111",
    "note": "Prefers calls after 5pm; ask for Zebulon",
    "preferences": {"nickname": "Hetty", "spouse": "Zebulon Quickfeather"},
    "balance": Decimal("1234.56"),
    "since": dt.date(2019, 4, 2),
    "kind": "co",
}


def needles() -> tuple[list[str], list[tuple[str, str]]]:
    words, pairs = [PHONE, "555-7788", "Hetty", "PO Box 4471"], [("4471", "PO Box")]
    for first, last, email, external_id, street in REAL:
        words += [first, last, email, email.split("@")[0], email.split("@")[1], external_id]
        words.append(street)
        number, name = street.split(" ", 1)
        pairs.append((number, name))
    for address in SOLD:
        words.append(address.split(",")[0])
        number, name = address.split(",")[0].split(" ", 1)
        pairs.append((number, name))
    words += [v for k, v in CONTACT.items() if isinstance(v, str) and k != "kind"]
    return words, pairs


@pytest.fixture
def copy_contacts(_promotable_tables, monkeypatch):
    """A model added later (contacts with a phone and free text) is copied too."""
    monkeypatch.setattr(
        anonymize, "COPIED", [*anonymize.COPIED, CopySpec("releases.Contact", group=None)]
    )


def production_data(tenant, *, contacts: bool = False) -> None:
    env = tenant.production
    for product in ("HELOC", "Cash-out refinance"):
        for environment in (tenant.production, tenant.staging):
            OfferProductFactory(environment=environment, name=product, min_amount=Decimal(5000))
    for i, (first, last, email, external_id, street) in enumerate(REAL):
        member = MemberFactory(
            environment=env,
            first_name=first,
            last_name=last,
            email=email,
            external_id=external_id,
            enrollment="enrolled",
            is_test=i == 2,
        )
        prop = PropertyFactory(
            environment=env,
            member=member,
            external_id=f"PARCEL-{external_id}",
            street=street,
            latitude=47.61 + i / 100,
            longitude=-122.33 - i / 100,
            purchase_date=dt.date(2016, 3, 14),
            purchase_price=Decimal("512000.00"),
            grade=8,
            condition=4,
        )
        LienFactory(
            environment=env,
            property=prop,
            original_amount=Decimal("409600.00"),
            balance=Decimal("331254.17"),
            rate=Decimal("4.125"),
            origination_date=dt.date(2016, 3, 14),
            balance_as_of=dt.date(2024, 1, 1),
        )
        for months in range(4):
            value = Decimal(880000 + 10000 * months + 5000 * i)
            ValuationFactory(
                environment=env,
                property=prop,
                provider="comparable",
                value=value,
                low=value - 60000,
                high=value + 60000,
                as_of=dt.date(2024, 1 + months, 1),
            )
        VendorValueFactory(
            environment=env, property=prop, vendor="Acme AVM", as_of=dt.date(2024, 2, 1)
        )
        Property._base_manager.filter(pk=prop.pk).update(
            value=value, value_low=value - 60000, value_high=value + 60000, confidence=80,
            valued_on=dt.date(2024, 4, 1),
        )  # fmt: skip
        MemberOfferFactory(
            environment=env,
            member=member,
            product=OfferProductFactory._meta.model._base_manager.get(
                environment=env, name="HELOC"
            ),
            first_viewed_at=dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC),
            view_count=3,
        )
    for n, address in enumerate(SOLD):
        SaleFactory(
            environment=env,
            external_id=f"KC-REC-{n}",
            address=address,
            price=Decimal("905500"),
            sale_date=dt.date(2024, 2, 20),
        )
    if contacts:  # the table exists with the copy_contacts fixture
        test_models.Contact.objects.create(environment=env, **CONTACT)
    with environment_scope(env):
        properties_recompute(environment=env)


def staging_rows(tenant):
    """Staging's member data as plain values (what a second refresh must reproduce)."""
    env = tenant.staging
    return (
        list(
            Member._base_manager.filter(environment=env)
            .order_by("external_id")
            .values_list("first_name", "last_name", "email", "external_id", "is_test")
        ),
        list(
            Property._base_manager.filter(environment=env)
            .order_by("external_id")
            .values_list(
                "external_id", "street", "latitude", "longitude", "purchase_date",
                "purchase_price", "value",
            )
        ),
        list(
            Lien._base_manager.filter(environment=env)
            .order_by("property__external_id")
            .values_list("original_amount", "balance", "origination_date")
        ),
    )  # fmt: skip


@pytest.mark.django_db
def test_scenario_8__no_production_name_email_phone_or_address_left_anywhere_in_staging(
    tenant, people, copy_contacts
):
    production_data(tenant, contacts=True)
    old = MemberFactory(environment=tenant.staging, email="old-staging@example.test")
    PropertyFactory(environment=tenant.staging, member=old)
    config_before = snapshot_hash(capture(tenant.staging))

    result = staging_refresh_from_production(environment=tenant.staging, actor=people.it)

    words, pairs = needles()
    leaks = scan(tenant.staging, needles=words, street_pairs=pairs)
    assert leaks == [], "\n".join(f"{f.model}.{f.field} #{f.pk}: {f.needle}" for f in leaks)
    # The scan does see staging (a planted production email is found), so it proves something.
    planted = AuditEntry.objects.create(
        environment=tenant.staging, action="action", object_type="x", reason=REAL[0][2]
    )
    found = scan(tenant.staging, needles=words)
    assert {(f.model, f.pk) for f in found} == {("institutions.AuditEntry", planted.pk)}
    assert REAL[0][2] in {f.needle for f in found}

    assert result.copied["homes.Member"] == 3
    assert result.copied["homes.Valuation"] == 12
    assert result.copied["homes.Sale"] == 2
    assert result.copied["releases.Contact"] == 1
    assert result.not_copied_fields["releases.Contact"] == ["note", "preferences"]
    staged = list(Member._base_manager.filter(environment=tenant.staging).order_by("pk"))
    assert [m.is_test for m in staged] == [False, False, True]
    assert all(m.email.endswith("@staging-sink.invalid") for m in staged)
    assert all(m.first_name and m.last_name for m in staged)
    assert not Member._base_manager.filter(pk=old.pk).exists()  # staging's members replaced
    assert snapshot_hash(capture(tenant.staging)) == config_before  # configuration untouched


@pytest.mark.django_db
def test_staging_refresh__dashboards_keep_the_shape_of_production(tenant, people):
    production_data(tenant)
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    real = list(Property._base_manager.filter(environment=tenant.production).order_by("pk"))
    copy = list(Property._base_manager.filter(environment=tenant.staging).order_by("pk"))
    assert len(copy) == len(real) == 3
    for r, c in zip(real, copy, strict=True):
        moved = c.value / r.value
        assert Decimal("0.95") <= moved <= Decimal("1.05")
        assert moved != 1
        assert c.value % 1000 == 0  # an estimate stays rounded to $1,000
        assert c.value_low <= c.value <= c.value_high
        assert abs(c.latitude - r.latitude) < 0.002
        assert (c.latitude, c.longitude) != (r.latitude, r.longitude)
        assert 1 <= (r.purchase_date - c.purchase_date).days <= 30
        assert (c.city, c.postal_code, c.bedrooms, c.living_sqft, c.grade, c.condition) == (
            r.city, r.postal_code, r.bedrooms, r.living_sqft, r.grade, r.condition,
        )  # fmt: skip
        # Equity recomputed from the copied figures: an LTV close to the real one.
        assert c.computed_at is not None
        assert c.equity == c.value - c.lien_balance
        assert abs(c.cltv - r.cltv) <= r.cltv * Decimal("0.08")
        real_lien = Lien._base_manager.get(property=r)
        lien = Lien._base_manager.get(property=c)
        assert lien.origination_date == c.purchase_date  # shifted together with its home
        assert float(lien.balance / lien.original_amount) == pytest.approx(
            float(real_lien.balance / real_lien.original_amount), rel=0.001
        )
        history = Valuation._base_manager.filter(property=c).order_by("as_of")
        assert [v.as_of for v in history] == [
            v.as_of for v in Valuation._base_manager.filter(property=r).order_by("as_of")
        ]
    # Offers come from staging's own products; engagement follows the product by name.
    assert OfferMatch._base_manager.filter(environment=tenant.staging).exists()
    products = MemberOffer._base_manager.filter(environment=tenant.staging).values_list(
        "product__environment", "product__name", "view_count"
    )
    assert set(products) == {(tenant.staging.pk, "HELOC", 3)}
    sale = Sale._base_manager.filter(environment=tenant.staging).first()
    assert sale.address.endswith(" Pine St, Seattle, WA 98101")
    assert sale.external_id.startswith("ANON-")


@pytest.mark.django_db
def test_staging_refresh__same_production__same_staging_identities(tenant, people):
    production_data(tenant)
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    first = staging_rows(tenant)
    flag = FlagFactory(environment=tenant.staging)
    named = Member._base_manager.get(environment=tenant.staging, is_test=True)
    flag.members.add(named)

    result = staging_refresh_from_production(environment=tenant.staging, actor=people.admin)

    assert staging_rows(tenant) == first
    # Configuration naming a member follows that member into the new copy.
    assert result.relinked == 1
    with environment_scope(tenant.staging):
        assert [m.external_id for m in flag.members.all()] == [named.external_id]
    assert not Member._base_manager.filter(pk=named.pk).exists()


@pytest.mark.django_db
def test_staging_refresh__new_model_fields__replaced_by_type_and_name(
    tenant, people, copy_contacts
):
    production_data(tenant, contacts=True)
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    contact = test_models.Contact.objects.get(environment=tenant.staging)
    assert contact.mobile_phone.startswith("+1-")
    assert "-555-01" in contact.mobile_phone
    assert contact.email.endswith("@staging-sink.invalid")
    assert contact.external_id.startswith("ANON-")
    assert contact.mailing_address.startswith("PO Box ")
    assert "4471" not in contact.mailing_address
    assert (contact.note, contact.preferences) == ("", {})  # free text no rule knows
    assert contact.kind == "co"
    assert contact.balance != CONTACT["balance"]
    assert abs(contact.balance - CONTACT["balance"]) <= CONTACT["balance"] * Decimal("0.05")
    assert 1 <= (CONTACT["since"] - contact.since).days <= 30


@pytest.mark.django_db
def test_staging_refresh__failure_half_way__leaves_staging_as_it_was(tenant, people):
    production_data(tenant)
    before = MemberFactory(environment=tenant.staging, first_name="Kept")
    steps = []

    def interrupted(step, done, total):
        steps.append(step)
        if step == "liens":
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        staging_refresh_from_production(
            environment=tenant.staging, actor=people.it, progress=interrupted
        )
    assert "properties" in steps
    assert list(Member._base_manager.filter(environment=tenant.staging)) == [before]
    assert not Property._base_manager.filter(environment=tenant.staging).exists()
    assert not AuditEntry.objects.filter(environment=tenant.staging).exists()


@pytest.mark.django_db
def test_staging_refresh__audited_in_staging_and_production(tenant, people):
    production_data(tenant)
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    staging_entry = AuditEntry.objects.get(environment=tenant.staging)
    production_entry = AuditEntry.objects.get(
        environment=tenant.production, object_repr__startswith="Production copied"
    )
    assert staging_entry.actor == production_entry.actor == people.it
    assert "3 member" in staging_entry.object_repr
    assert staging_entry.changes["copied"]["homes.Property"] == 3


@pytest.mark.django_db
def test_staging_refresh__refusals__nothing_changes(tenant, people):
    kept = MemberFactory(environment=tenant.staging)
    with pytest.raises(ReleaseRefused, match="no members yet"):
        staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    MemberFactory(environment=tenant.production)
    with pytest.raises(ReleaseRefused, match="staging only"):
        staging_refresh_from_production(environment=tenant.production, actor=people.it)
    with pytest.raises(ReleaseRefused, match="IT or admin"):
        staging_refresh_from_production(environment=tenant.staging, actor=people.marketing)
    assert list(Member._base_manager.filter(environment=tenant.staging)) == [kept]
    assert Member._base_manager.filter(environment=tenant.production).count() == 1


@pytest.mark.django_db
def test_staging_refresh_command__progress_and_refusals(tenant):
    slug = tenant.institution.slug
    with pytest.raises(CommandError, match="no members yet"):
        call_command("staging_refresh", "--institution", slug, "--environment", "staging")
    production_data(tenant)
    with pytest.raises(CommandError, match="staging only"):
        call_command("staging_refresh", "--institution", slug, "--environment", "production")
    out = io.StringIO()
    call_command("staging_refresh", "--institution", slug, "--environment", "staging", stdout=out)
    text = out.getvalue()
    assert "members" in text
    assert "[##############################] 100% 3/3" in text
    assert "Staging refreshed from production, anonymized: 3 member" in text


@pytest.mark.django_db
def test_staging_refresh__bathrooms__copied_as_counted_not_moved_like_money(tenant, people):
    """A home's bathrooms are a count in quarters (2, 2.5, 1.75), like its bedrooms: the copy
    keeps them, so staging homes and the estimator's comparables stay plausible."""
    for bathrooms in ("1.00", "1.75", "2.50", "3.00"):
        PropertyFactory(environment=tenant.production, bathrooms=Decimal(bathrooms))

    staging_refresh_from_production(environment=tenant.staging, actor=people.it)

    real = list(
        Property._base_manager.filter(environment=tenant.production)
        .order_by("pk")
        .values_list("bathrooms", flat=True)
    )
    copied = list(
        Property._base_manager.filter(environment=tenant.staging)
        .order_by("pk")
        .values_list("bathrooms", flat=True)
    )
    assert copied == real


@pytest.mark.parametrize(
    "street",
    [
        "N7420 County Road K",  # rural grid address (Wisconsin)
        "W204N11509 Goldendale Rd",  # grid address with both coordinates
        "Apt 4, 1204 Pine St",  # the unit written before the house
    ],
)
@pytest.mark.usefixtures("_promotable_tables")  # the scan reads every model's table
@pytest.mark.django_db
def test_staging_refresh__house_number_not_first_in_the_street__address_replaced(
    tenant, people, street
):
    """Scenario 8: whatever way the institution writes a street, its production address is
    not readable in staging afterwards."""
    PropertyFactory(environment=tenant.production, street=street)

    staging_refresh_from_production(environment=tenant.staging, actor=people.it)

    house = street.split(", ")[-1]
    leaks = scan(tenant.staging, needles=[house])
    assert leaks == [], [(f.model, f.field, f.value) for f in leaks]
    assert Property._base_manager.filter(environment=tenant.staging).get().street != street


def _key_that_moves(street: str, onto: str) -> str:
    """A pseudonym key under which `street` gets the house number of `onto` (any key does
    so for some pair of neighbours; this one makes the pair known)."""
    for n in range(5000):
        key = f"staging-key-{n}"
        if Pseudonyms(key).street(street).split(" ")[0] == onto.split(" ")[0]:
            return key
    raise AssertionError("no such key")


@pytest.mark.parametrize(
    ("neighbour", "member"),
    [
        ("12 Pine St Apt 4", "57 Pine St"),  # the neighbour's unit is part of the street
        ("12 Pine Street", "57 Pine St"),  # the neighbour's street is spelled out
    ],
)
@pytest.mark.django_db
def test_staging_refresh__replacement_house_number__never_a_neighbours_real_address(
    tenant, people, neighbour, member
):
    """A member's replacement address is never the address of another production member,
    however the other's street is written (with a unit, or 'Street' for 'St')."""
    StagingDataKey._base_manager.create(
        environment=tenant.staging, key=_key_that_moves(member, neighbour)
    )
    PropertyFactory(environment=tenant.production, street=neighbour)
    PropertyFactory(environment=tenant.production, street=member)

    staging_refresh_from_production(environment=tenant.staging, actor=people.it)

    staged = set(
        Property._base_manager.filter(environment=tenant.staging).values_list("street", flat=True)
    )
    # "12 Pine St": the neighbour's building, in staging as the other member's home.
    assert "12 Pine St" not in staged, staged


def staged_names(tenant) -> dict[str, tuple[str, str]]:
    rows = Member._base_manager.filter(environment=tenant.staging).values_list(
        "external_id", "first_name", "last_name"
    )
    return {external_id: (first, last) for external_id, first, last in rows}


@pytest.mark.django_db
def test_staging_refresh__production_gains_a_member__the_others_keep_their_staging_names(
    tenant, people
):
    """Testers find yesterday's staging members under the same names after tonight's
    refresh; a new production member (here named Priya Okonkwo) changes nobody else's."""
    StagingDataKey._base_manager.create(environment=tenant.staging, key="staging-identities")
    real = [("Zebulon", "Quickfeather"), ("Marisela", "Oyelaran-Brandt"), ("Henrietta", "Ashby")]
    for n, (first, last) in enumerate(real):
        MemberFactory(
            environment=tenant.production, first_name=first, last_name=last, external_id=f"C{n}"
        )
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    before = staged_names(tenant)
    # Nobody has the new member's names in staging (who did would have to change).
    assert not {"Priya", "Okonkwo"} & {name for names in before.values() for name in names}

    MemberFactory(
        environment=tenant.production, first_name="Priya", last_name="Okonkwo", external_id="C9"
    )
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    after = staged_names(tenant)

    assert {k: after[k] for k in before} == before
