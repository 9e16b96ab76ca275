"""Mock staging members and the anonymized copy of production (scenario 8, members part)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models

from homes.models import Member
from institutions.models import AuditEntry, TenantModel
from releases.services import ReleaseRefused
from releases.staging_data import pseudonyms
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.mock import mock_members_generate
from tests.factories import MemberFactory

REAL = [
    ("Avery", "Lindqvist", "avery.lindqvist@gmail.example", "CORE-0001"),
    ("Margarethe", "Oyelaran-Brandt", "m.oyelaran@outlook.example", "CORE-0002"),
    ("Tobias", "Fairbanks", "toby@fairbanks.example", "CORE-0003"),
]


def staging_text(environment) -> str:
    """Every text value of every tenant row in the environment, and its audit entries."""
    chunks = []
    for model in apps.get_models():
        if not issubclass(model, TenantModel):
            continue
        names = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        for row in model._base_manager.filter(environment=environment).values_list(*names):
            chunks.extend(str(v) for v in row)
    for entry in AuditEntry.objects.filter(environment=environment):
        chunks.extend([entry.object_repr, str(entry.changes), entry.reason])
    return "\n".join(chunks).lower()


@pytest.mark.django_db
def test_staging_refresh__no_production_name_or_email_left_in_staging(tenant, people):
    for first, last, email, ext in REAL:
        MemberFactory(
            environment=tenant.production,
            first_name=first,
            last_name=last,
            email=email,
            external_id=ext,
        )
    MemberFactory(environment=tenant.staging, email="old-staging@example.test")
    copied = staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    assert copied == 3
    text = staging_text(tenant.staging)
    for first, last, email, ext in REAL:
        for secret in (first, last, email, ext, email.split("@")[1]):
            assert secret.lower() not in text, secret
    staged = list(Member._base_manager.filter(environment=tenant.staging))
    assert len(staged) == 3
    assert all(m.email.endswith("@staging-sink.invalid") for m in staged)
    assert all(m.first_name and m.last_name for m in staged)


@pytest.mark.django_db
def test_staging_refresh__deterministic_and_shape_kept(tenant, people):
    MemberFactory(environment=tenant.production, is_test=True, enrollment="opted_out")
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    first = list(
        Member._base_manager.filter(environment=tenant.staging).values_list(
            "first_name", "last_name", "email", "external_id", "is_test", "enrollment"
        )
    )
    staging_refresh_from_production(environment=tenant.staging, actor=people.it)
    again = list(
        Member._base_manager.filter(environment=tenant.staging).values_list(
            "first_name", "last_name", "email", "external_id", "is_test", "enrollment"
        )
    )
    assert first == again
    assert first[0][4:] == (True, "opted_out")


@pytest.mark.django_db
def test_staging_refresh__refusals(tenant, people):
    with pytest.raises(ReleaseRefused, match="staging only"):
        staging_refresh_from_production(environment=tenant.production, actor=people.it)
    with pytest.raises(ReleaseRefused, match="IT or admin"):
        staging_refresh_from_production(environment=tenant.staging, actor=people.marketing)


@pytest.mark.django_db
def test_mock_members__same_seed_same_members_with_progress(tenant):
    seen = []
    made = mock_members_generate(
        environment=tenant.staging,
        count=1500,
        seed=7,
        region="king-county-wa",
        progress=lambda d, t: seen.append(d),
    )
    assert made == 1500
    assert seen == [1000, 1500]
    rows = list(
        Member._base_manager.filter(environment=tenant.staging)
        .order_by("external_id")
        .values_list("first_name", "last_name", "email", "is_test")
    )
    Member._base_manager.filter(environment=tenant.staging).delete()
    mock_members_generate(environment=tenant.staging, count=1500, seed=7, region="king-county-wa")
    again = list(
        Member._base_manager.filter(environment=tenant.staging)
        .order_by("external_id")
        .values_list("first_name", "last_name", "email", "is_test")
    )
    assert rows == again
    assert 0 < sum(r[3] for r in rows) < 200  # a small test cohort


@pytest.mark.django_db
def test_staging_mock_command__prints_a_progress_bar(tenant):
    out = io.StringIO()
    call_command(
        "staging_mock",
        "--institution",
        tenant.institution.slug,
        "--environment",
        "staging",
        "--count",
        "20",
        "--seed",
        "3",
        stdout=out,
    )
    assert "[##############################] 100% 20/20" in out.getvalue()
    with pytest.raises(Exception, match="staging only"):
        call_command(
            "staging_mock",
            "--institution",
            tenant.institution.slug,
            "--environment",
            "production",
            stdout=io.StringIO(),
        )


def test_pseudonyms__street_phone_amount__replaced_in_shape(settings):
    address = pseudonyms.street_address("1204 Pine St", "acme")
    assert address.endswith(" Pine St")
    assert not address.startswith("1204 ")
    assert pseudonyms.street_address("1204 Pine St", "acme") == address
    assert "555-01" in pseudonyms.phone("+1 206 555 7788", "acme")
    value = pseudonyms.perturb(Decimal("412345.67"), "lien-1", "acme")
    assert value != Decimal("412345.67")
    assert abs(value - Decimal("412345.67")) <= Decimal("412345.67") * Decimal("0.08")
