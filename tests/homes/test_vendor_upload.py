"""Vendor value CSV upload in the admin: bad input refused whole, money to the cent, a
large file revalued in the background."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from homes.finance.rounding import cents
from homes.models import Property, RefreshRun, Valuation, VendorValue
from homes.services import vendor
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.homes.factories import PropertyFactory, home_settings_factory, institution_today

pytestmark = pytest.mark.django_db


def _today(tenant):
    return institution_today(tenant.staging)


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


def test_vendor_upload__more_homes_than_revalued_inline__stored_now_revalued_by_a_run(
    tenant, monkeypatch, django_capture_on_commit_callbacks
):
    """A large file would keep the request revaluing past the web worker's timeout: the
    request stores the values and queues a refresh run of their homes, which the admin
    links to; the homes are revalued when its task runs."""
    monkeypatch.setattr(vendor, "INLINE_REVALUE_MAX", 2)
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    homes = [PropertyFactory(environment=env) for _ in range(3)]
    untouched = PropertyFactory(environment=env)
    content = "property,value,fsd,as_of\n" + "".join(
        f"{home.external_id},{500000 + i},0.05,{_today(tenant)}\n" for i, home in enumerate(homes)
    )
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            reverse("admin:homes_vendorvalue_upload"),
            {"vendor": "acme", "file": SimpleUploadedFile("v.csv", content.encode())},
            follow=True,
        )
    assert response.redirect_chain[-1][1] == 302
    with environment_scope(env):
        run = RefreshRun.objects.get()
        assert VendorValue.objects.count() == 3
        assert not Valuation.objects.exists()
        assert set(Property.objects.values_list("value", flat=True)) == {None}
    assert (run.scope, run.status, run.total) == ("waiting", "pending", 3)
    page = response.content.decode()
    assert "Imported 3 vendor values; revaluing 3 properties in the background" in page
    assert f"refresh {run.pk}</a> shows its progress" in page

    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued) == ("done", 3, 3)
    with environment_scope(env):
        values = dict(Property.objects.values_list("pk", "value"))
    assert values == {
        homes[0].pk: Decimal(500000),
        homes[1].pk: Decimal(500001),
        homes[2].pk: Decimal(500002),
        untouched.pk: None,
    }
    runs = client.get(reverse("admin:homes_refreshrun_changelist")).content.decode()
    assert "3/3 (100%)" in runs
