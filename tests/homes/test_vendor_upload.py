"""Vendor value CSV upload in the admin: bad input refused whole, money to the cent."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from homes.finance.rounding import cents
from homes.models import Valuation, VendorValue
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.homes.factories import PropertyFactory, home_settings_factory

pytestmark = pytest.mark.django_db


def _today(tenant):
    return timezone.now().astimezone(tenant.institution.tz).date()


def _upload(tenant, content: str):
    client = staff_client(staff_user(tenant.institution, "lending"), tenant.staging)
    client.raise_request_exception = False  # see the status a staff member would get
    return client.post(
        reverse("admin:homes_vendorvalue_upload"),
        {"vendor": "acme", "file": SimpleUploadedFile("v.csv", content.encode())},
    )


def _nothing_saved(tenant):
    with environment_scope(tenant.staging):
        return not VendorValue.objects.exists() and not Valuation.objects.exists()


def test_vendor_upload__field_over_csv_field_limit__refused_not_server_error(tenant):
    """A garbled file (one field over 128 KiB, e.g. an unclosed quote) is bad input."""
    prop = PropertyFactory(environment=tenant.staging)
    content = (
        f"property,value,fsd,as_of\n{prop.external_id},{'9' * 140_000},0.05,{_today(tenant)}\n"
    )
    response = _upload(tenant, content)
    assert response.status_code == 400, f"got {response.status_code}"
    assert _nothing_saved(tenant)


def test_vendor_upload__property_id_too_large__refused_naming_the_row(tenant):
    content = f"property,value,fsd,as_of\n#{'9' * 25},300000,0.05,{_today(tenant)}\n"
    response = _upload(tenant, content)
    assert response.status_code == 400, f"got {response.status_code}"
    assert "Row 1, property" in response.content.decode()


def test_vendor_upload__value_too_large_for_a_money_field__refused_naming_row_and_field(tenant):
    """Money fields hold 14 digits (12 before the point): a 13-digit value would fail in
    the database (or on the next read, on SQLite)."""
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    content = f"property,value,fsd,as_of\n{prop.external_id},1000000000000,0.05,{_today(tenant)}\n"
    response = _upload(tenant, content)
    assert response.status_code == 400, f"got {response.status_code}"
    assert "Row 1, value" in response.content.decode()
    assert _nothing_saved(tenant)


def test_vendor_upload__decimal_comma__refused_not_read_as_a_hundred_times_the_value(tenant):
    """'512000,50' (a decimal comma, as European spreadsheets write it) must not become
    $51,200,050: the comma is only a thousands separator between groups of three digits."""
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    content = f'property,value,fsd,as_of\n{prop.external_id},"512000,50",0.05,{_today(tenant)}\n'
    response = _upload(tenant, content)
    with environment_scope(tenant.staging):
        stored = list(VendorValue.objects.values_list("value", flat=True))
    assert stored == [], f"stored {stored} from '512000,50'"
    assert response.status_code == 400
    assert "Row 1, value: &#x27;512000,50&#x27; is not a number (use . for decimals)" in (
        response.content.decode()
    )


def test_vendor_upload__thousands_separators__read_as_the_number(tenant):
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    content = (
        "property,value,low,high,as_of\n"
        f'{prop.external_id},"$512,000.50","480,000","1,000,000",{_today(tenant)}\n'
    )
    assert _upload(tenant, content).status_code == 302
    with environment_scope(tenant.staging):
        stored = VendorValue.objects.values_list("value", "low", "high").get()
    assert stored == (Decimal("512000.50"), Decimal("480000.00"), Decimal("1000000.00"))


def test_vendor_upload__sub_cent_value__rounded_as_documented(tenant):
    """homes.finance.rounding: money is stored to the cent, ROUND_HALF_UP (cents()), not
    left to the database (SQLite rounds through a float, half-even)."""
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    content = f"property,value,fsd,as_of\n{prop.external_id},512000.125,0.05,{_today(tenant)}\n"
    assert _upload(tenant, content).status_code == 302
    with environment_scope(tenant.staging):
        stored = VendorValue.objects.get().value
        valued = Valuation.objects.get().value
    assert stored == cents(Decimal("512000.125")) == Decimal("512000.13"), stored
    assert valued == Decimal("512000.13"), valued
