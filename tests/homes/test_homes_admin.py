import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from homes.models import MemberOffer, OfferProduct, RefreshRun, VendorValue
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.homes.factories import (
    MemberOfferFactory,
    OfferProductFactory,
    PropertyFactory,
    home_settings_factory,
    institution_today,
)

pytestmark = pytest.mark.django_db


def test_vendor_upload__bad_rows__page_names_each_and_saves_nothing(tenant):
    prop = PropertyFactory(environment=tenant.staging)
    client = staff_client(staff_user(tenant.institution, "lending"), tenant.staging)
    today = institution_today(tenant.staging)
    content = f"property,value,fsd,as_of\n{prop.external_id},abc,0.05,{today}\nX,1,0.05,{today}\n"
    response = client.post(
        reverse("admin:homes_vendorvalue_upload"),
        {"vendor": "acme", "file": SimpleUploadedFile("v.csv", content.encode())},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Row 1, value: &#x27;abc&#x27; is not a number." in html
    assert "Row 2, property" in html
    with environment_scope(tenant.staging):
        assert not VendorValue.objects.exists()


def test_vendor_upload__good_file__imports(tenant):
    home_settings_factory(tenant.staging, provider_order=["vendor"])
    prop = PropertyFactory(environment=tenant.staging)
    client = staff_client(staff_user(tenant.institution, "it"), tenant.staging)
    today = institution_today(tenant.staging)
    content = f"property,value,fsd,as_of\n{prop.external_id},512000,0.05,{today}\n"
    response = client.post(
        reverse("admin:homes_vendorvalue_upload"),
        {"vendor": "acme", "file": SimpleUploadedFile("v.csv", content.encode())},
    )
    assert response.status_code == 302
    prop.refresh_from_db()
    assert prop.value == 512000


def test_offer_product_admin__trigger_terms_and_min_over_max__form_shows_errors(tenant):
    client = staff_client(staff_user(tenant.institution, "marketing"), tenant.staging)
    data = {
        "name": "HELOC", "kind": "heloc", "is_active": "on", "display_order": 0,
        "title": "HELOC", "summary": "Only $99 per month!", "disclosures": "",
        "rate_type": "fixed", "apr": "7.5", "max_cltv": "0.8", "min_amount": "50000",
        "max_amount": "10000", "term_months": 120, "max_existing_liens": 1,
        "min_confidence": 0, "min_equity": 0, "min_rate_gap_bps": 50, "max_ltv_for_pmi": "0.8",
    }  # fmt: skip
    response = client.post(reverse("admin:homes_offerproduct_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "more than the maximum" in errors["min_amount"][0]
    assert "a stated payment" in errors["disclosures"][0]
    with environment_scope(tenant.staging):
        assert not OfferProduct.objects.exists()


def test_offer_product_admin__production__read_only(tenant):
    product = OfferProductFactory(environment=tenant.production)
    client = staff_client(staff_user(tenant.institution, "marketing"), tenant.production)
    url = reverse("admin:homes_offerproduct_change", args=[product.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"name": "x"}).status_code == 403


def test_member_offer_admin__lending_sees_selected_offers(tenant):
    state = MemberOfferFactory(environment=tenant.production)
    with environment_scope(tenant.production):
        MemberOffer.objects.filter(pk=state.pk).update(
            selected_at=datetime.datetime.now(datetime.UTC)
        )
    client = staff_client(staff_user(tenant.institution, "lending"), tenant.production)
    response = client.get(reverse("admin:homes_memberoffer_changelist"))
    assert response.status_code == 200
    assert [o.pk for o in response.context["cl"].result_list] == [state.pk]
    marketing = staff_client(staff_user(tenant.institution, "marketing"), tenant.production)
    assert marketing.get(reverse("admin:homes_memberoffer_changelist")).status_code == 403


def test_refresh_admin__start__queues_and_shows_progress(
    tenant, django_capture_on_commit_callbacks
):
    home_settings_factory(tenant.staging, provider_order=["mock"])
    PropertyFactory(environment=tenant.staging)
    client = staff_client(staff_user(tenant.institution, "it"), tenant.staging)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("admin:homes_refreshrun_start")).status_code == 302
    with environment_scope(tenant.staging):
        run = RefreshRun.objects.get()
    assert run.status == "done"
    page = client.get(reverse("admin:homes_refreshrun_changelist")).content.decode()
    assert "1/1 (100%)" in page


def test_homes_refresh_command__prints_progress(tenant, capsys):
    from django.core.management import call_command

    home_settings_factory(tenant.staging, provider_order=["mock"])
    PropertyFactory(environment=tenant.staging)
    call_command("homes_refresh", institution=tenant.institution.slug, environment="staging")
    assert "done: 1/1 (100%)" in capsys.readouterr().out


def test_offer_product_admin__name_taken_in_this_environment__form_error_not_server_error(tenant):
    OfferProductFactory(environment=tenant.staging, name="HELOC")
    OfferProductFactory(environment=tenant.production, name="Other")
    client = staff_client(staff_user(tenant.institution, "marketing"), tenant.staging)
    data = {
        "kind": "heloc", "is_active": "on", "display_order": 0, "title": "HELOC",
        "summary": "A line of credit", "disclosures": "APR 7.5%", "rate_type": "fixed",
        "apr": "7.5", "max_cltv": "0.8", "min_amount": "10000", "max_amount": "50000",
        "term_months": 120, "max_existing_liens": 1, "min_confidence": 0, "min_equity": 0,
        "min_rate_gap_bps": 50, "max_ltv_for_pmi": "0.8",
    }  # fmt: skip
    response = client.post(reverse("admin:homes_offerproduct_add"), {**data, "name": "HELOC"})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Offer product with this Name already exists."  # not "this Environment and Name"
    ]
    with environment_scope(tenant.staging):
        assert OfferProduct.objects.count() == 1
    # A name taken only in another environment is free here.
    assert (
        client.post(reverse("admin:homes_offerproduct_add"), {**data, "name": "Other"}).status_code
        == 302
    )
    with environment_scope(tenant.staging):
        assert OfferProduct.objects.count() == 2


def test_property_admin__a_cltv_over_100__shown_and_the_home_saved(tenant):
    """A home whose liens are 120 times its value (a mistyped vendor value) reads in the
    list and on its page, and saving it (full_clean of every field, its CLTV too) works."""
    from decimal import Decimal

    from homes.models import Property
    from homes.services import properties_recompute
    from tests.homes.factories import LienFactory

    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    prop = PropertyFactory(environment=env)
    LienFactory(environment=env, property=prop, original_amount=600000, balance=600000)
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(value=5000, confidence=80)
        properties_recompute(environment=env)
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    assert client.get(reverse("admin:homes_property_changelist")).status_code == 200
    url = reverse("admin:homes_property_change", args=[prop.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "120.0000" in page.content.decode()
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {
        form.add_prefix(name): "" if form[name].value() is None else form[name].value()
        for form in forms
        for name in form.fields
    }
    data["street"] = "1 Corrected Street"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    prop.refresh_from_db()
    assert (prop.street, prop.cltv) == ("1 Corrected Street", Decimal(120))
