"""The digital-banking origins that may frame the member tile: only https origins are kept,
and the tile's frame-ancestors lists exactly them."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from institutions.models import AuditEntry, Institution
from institutions.services import institution_create, institution_update
from tests.conftest import member_client, staff_client
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

GOOD = ["https://banking.example.com", "https://online.cu.example:8443", "HTTPS://Mobile.Example"]
BAD = [
    "*",
    "https:",
    "https://",
    "https://*.example.com",
    "http://banking.example.com",
    "javascript://banking.example.com",
    "'self'",
    "banking.example.com",
    "https://banking.example.com/",
    "https://banking.example.com/embed",
    "https://banking.example.com?x=1",
    "https://banking.example.com#tile",
    "https://user@banking.example.com",
    "https://banking.example.com https://evil.example",
    "https://banking.example.com; script-src *",
    "https://banking.example.com,https://evil.example",
    "https://-bad-.example.com",
    "https://banking.example.com:",
    "https://banking.example.com:99999",
    "",
    7,
]
KEPT = ["https://kept.example.com"]


def _origin_errors(error: ValidationError) -> list[str]:
    return error.message_dict["digital_banking_origins"]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_update__bad_origin__refused_naming_it_and_nothing_saved(tenant, bad):
    institution = tenant.institution
    institution_update(institution=institution, actor=None, digital_banking_origins=KEPT)
    updates = AuditEntry.objects.filter(institution=institution, action="update").count()
    with pytest.raises(ValidationError) as refused:
        institution_update(
            institution=institution,
            actor=None,
            digital_banking_origins=["https://fine.example.com", bad],
        )
    (message,) = _origin_errors(refused.value)
    assert repr(bad) in message
    institution.refresh_from_db()
    assert institution.digital_banking_origins == KEPT
    assert AuditEntry.objects.filter(institution=institution, action="update").count() == updates


def test_update__every_bad_origin__named_in_its_own_message(tenant):
    with pytest.raises(ValidationError) as refused:
        institution_update(
            institution=tenant.institution,
            actor=None,
            digital_banking_origins=["*", GOOD[0], "https:"],
        )
    messages = _origin_errors(refused.value)
    assert len(messages) == 2
    assert "'*'" in messages[0]
    assert "wildcard" in messages[0]
    assert "'https:'" in messages[1]


def test_update__not_a_list__refused(tenant):
    with pytest.raises(ValidationError) as refused:
        institution_update(
            institution=tenant.institution,
            actor=None,
            digital_banking_origins="https://banking.example.com",
        )
    assert "list of origins" in _origin_errors(refused.value)[0]


def test_create__bad_origin__refused_and_no_institution_made():
    with pytest.raises(ValidationError) as refused:
        institution_create(
            slug="framed",
            display_name="Framed Credit Union",
            legal_name="Framed Credit Union",
            digital_banking_origins=["https:"],
        )
    assert "'https:'" in _origin_errors(refused.value)[0]
    assert not Institution.objects.filter(slug="framed").exists()


@pytest.mark.parametrize("origins", [GOOD, []], ids=["origins", "none"])
def test_update__good_origins__saved(tenant, origins):
    institution = tenant.institution
    institution_update(institution=institution, actor=None, digital_banking_origins=origins)
    institution.refresh_from_db()
    assert institution.digital_banking_origins == origins


def _admin_form(institution, origins) -> dict:
    return {
        "display_name": institution.display_name,
        "legal_name": institution.legal_name,
        "nmls_id": institution.nmls_id,
        "time_zone": institution.time_zone,
        "postal_address": institution.postal_address,
        "digital_banking_origins": json.dumps(origins),
    }


def test_admin__bad_origin__form_error_names_it_and_nothing_saved(tenant):
    institution = tenant.institution
    client = staff_client(staff_user(institution, "admin"), tenant.staging)
    url = reverse("admin:institutions_institution_change", args=[institution.pk])
    response = client.post(url, _admin_form(institution, [GOOD[0], "https://*.example.com"]))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["digital_banking_origins"]
    assert len(errors) == 1
    assert "'https://*.example.com'" in errors[0]
    institution.refresh_from_db()
    assert institution.digital_banking_origins == []


def test_admin__good_origins__saved(tenant):
    institution = tenant.institution
    client = staff_client(staff_user(institution, "admin"), tenant.staging)
    url = reverse("admin:institutions_institution_change", args=[institution.pk])
    response = client.post(url, _admin_form(institution, GOOD[:2]))
    assert response.status_code == 302
    institution.refresh_from_db()
    assert institution.digital_banking_origins == GOOD[:2]


def test_tile__frame_ancestors__lists_the_saved_origins(member):
    institution = member.environment.institution
    institution_update(institution=institution, actor=None, digital_banking_origins=GOOD[:2])
    response = member_client(member).get("/tile/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://banking.example.com https://online.cu.example:8443"
    )
