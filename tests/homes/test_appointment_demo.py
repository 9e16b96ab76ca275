"""The appointments demo step: officers with availability and offers, one booking for a
test member, idempotent like demo_load itself."""

from __future__ import annotations

import pytest

from homes.demo_appointments import demo_appointments
from homes.models import Appointment, LoanOfficer, OfferProduct, OfficerAvailability
from institutions.demo import DemoReport
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.homes.factories import OfferProductFactory

pytestmark = pytest.mark.django_db


def _state(env):
    with environment_scope(env):
        return {
            "officers": sorted(LoanOfficer.objects.values_list("name", "email")),
            "windows": OfficerAvailability.objects.count(),
            "appointments": list(Appointment.objects.values_list("member__email", "officer__name")),
            "bookable": sorted(
                OfferProduct.objects.filter(book_appointment=True).values_list("name", flat=True)
            ),
        }


def test_demo_step__officers_availability_and_a_booking__running_again_changes_nothing(tenant):
    for env in (tenant.staging, tenant.production):
        OfferProductFactory(environment=env, name="HELOC")
        OfferProductFactory(environment=env, name="PMI removal", kind="pmi_removal")
        MemberFactory(environment=env, is_test=True, email=f"test@{env.kind}.example")
    report = DemoReport()
    demo_appointments(tenant.institution, report)
    first = {env.pk: _state(env) for env in (tenant.staging, tenant.production)}
    for env in (tenant.staging, tenant.production):
        state = first[env.pk]
        slug = tenant.institution.slug
        assert state["officers"] == [
            ("Dana Whitfield", f"dana.whitfield@{slug}.example"),
            ("Marcus Oyelaran", f"marcus.oyelaran@{slug}.example"),
        ]
        assert state["windows"] == 13
        assert state["appointments"] == [(f"test@{env.kind}.example", "Dana Whitfield")]
        assert state["bookable"] == ["HELOC", "PMI removal"]
    assert any("loan officers Dana Whitfield, Marcus Oyelaran" in line for line in report.lines)
    demo_appointments(tenant.institution, DemoReport())
    assert {env.pk: _state(env) for env in (tenant.staging, tenant.production)} == first
