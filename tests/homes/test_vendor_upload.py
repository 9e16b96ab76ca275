"""Vendor value CSV upload in the admin: bad input refused whole, money to the cent, a
large file revalued in the background."""

import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from homes.finance.rounding import cents
from homes.models import Property, RefreshRun, Valuation, VendorValue
from homes.services import vendor
from homes.valuation.providers import VENDOR_MAX_AGE
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


def test_vendor_upload__value_near_the_money_limit_with_an_fsd__refused_naming_row_and_field(
    tenant,
):
    """A value the import takes (at most 999,999,999,999.99) with an FSD has a range of
    value * (1 ± FSD), stored with the home: a high end past what a money field holds failed
    in the database (or on the next read, on SQLite). The row is refused, naming it; with
    its low and high given instead, the same value is stored and the home revalued."""
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    content = f"property,value,fsd,as_of\n{prop.external_id},999999999999,0.05,{_today(tenant)}\n"
    response = _upload(tenant, content)
    assert response.status_code == 400, f"got {response.status_code}"
    assert "Row 1, fsd" in response.content.decode()
    assert _nothing_saved(tenant)

    content = (
        "property,value,low,high,as_of\n"
        f"{prop.external_id},999999999999,949999999999,{vendor.MAX_MONEY},{_today(tenant)}\n"
    )
    assert _upload(tenant, content).status_code == 302
    with environment_scope(tenant.staging):
        stored = Property.objects.values_list("value", "value_high").get(pk=prop.pk)
    assert stored == (Decimal("999999999999.00"), vendor.MAX_MONEY)


@pytest.mark.parametrize("as_of", ["year one", "a day too old"])
def test_vendor_upload__value_older_than_the_vendor_provider_uses__refused_naming_row_and_field(
    tenant, as_of
):
    """0001-01-01 is a typing slip, and a value older than VENDOR_MAX_AGE is one the vendor
    provider never answers with: either was reported imported and its home revalued, though
    it could never value the home. Refused, naming the row and field."""
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    dated = (
        datetime.date(1, 1, 1)
        if as_of == "year one"
        else _today(tenant) - VENDOR_MAX_AGE - datetime.timedelta(days=1)
    )
    content = f"property,value,fsd,as_of\n{prop.external_id},300000,0.05,{dated}\n"
    response = _upload(tenant, content)
    assert response.status_code == 400, f"got {response.status_code}"
    assert f"Row 1, as_of: {dated} is more than 180 days ago" in response.content.decode()
    assert _nothing_saved(tenant)
    with environment_scope(tenant.staging):
        assert Property.objects.get(pk=prop.pk).value is None


def test_vendor_upload__value_as_old_as_the_vendor_provider_uses__imported_and_used(tenant):
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    dated = _today(tenant) - VENDOR_MAX_AGE
    content = f"property,value,fsd,as_of\n{prop.external_id},300000,0.05,{dated}\n"
    assert _upload(tenant, content).status_code == 302
    with environment_scope(tenant.staging):
        home = Property.objects.get(pk=prop.pk)
    assert (home.value, home.valued_on) == (Decimal(300000), dated)


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
