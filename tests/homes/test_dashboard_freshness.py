"""The dashboard's cached parts: a change shows on the next view, never another tenant's."""

from decimal import Decimal as D

import pytest

from flags.models import Flag
from flags.services.flags import flag_kill
from homes.models import HomeSettings, Lien, OfferProduct
from homes.services import home_settings_save, lien_save, offer_product_save
from institutions.services import branding_update
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory, staff_user
from tests.flags.factories import FlagFactory
from tests.homes.factories import institution_today
from tests.homes.test_member_pages import _home

pytestmark = pytest.mark.django_db


def _page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def no_recompute(monkeypatch):
    """The recompute that follows a product or settings change has not run yet (a task)."""
    from homes import tasks

    monkeypatch.setattr(tasks.recompute_matches, "delay", lambda *args, **kwargs: None)


def test_dashboard__offer_product_renamed__shows_before_the_recompute(
    member, no_recompute, django_capture_on_commit_callbacks
):
    _, (product,) = _home(member)
    client = member_client(member)
    assert "Line 0" in _page(client)
    env = member.environment
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        product = OfferProduct.objects.get(pk=product.pk)
        product.title = "Renamed line"
        offer_product_save(environment=env, product=product)
    html = _page(client)
    assert "Renamed line" in html
    assert "Line 0" not in html


def test_dashboard__settings_change__shows_before_the_recompute(
    member, no_recompute, django_capture_on_commit_callbacks
):
    _home(member)
    client = member_client(member)
    assert "Estimated value" in _page(client)
    env = member.environment
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        settings = HomeSettings.objects.get()
        settings.min_confidence = 95
        home_settings_save(environment=env, settings=settings)
    assert "confidently enough" in _page(client)


def test_dashboard__lien_change__shows_on_the_next_view(member, django_capture_on_commit_callbacks):
    prop, _ = _home(member)
    client = member_client(member)
    assert "$100,000" in _page(client)  # equity: 300,000 less 200,000
    env = member.environment
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        lien = Lien.objects.get(property=prop)
        lien.balance = D(150000)
        lien.balance_as_of = institution_today(env)
        lien_save(environment=env, lien=lien)
    assert "$150,000" in _page(client)


def test_dashboard__branding_change__shows_on_the_next_view(
    member, django_capture_on_commit_callbacks
):
    _home(member)
    client = member_client(member)
    assert "Shown on the next view" not in _page(client)
    with django_capture_on_commit_callbacks(execute=True):
        branding_update(
            environment=member.environment, actor=None, footer_text="Shown on the next view"
        )
    assert "Shown on the next view" in _page(client)


def test_dashboard__flag_killed__equity_widget_gone_on_the_next_view(
    member, django_capture_on_commit_callbacks
):
    env = member.environment
    _home(member)
    flag = FlagFactory(environment=env, name="dashboard_equity_widget", everyone=True)
    client = member_client(member)
    assert 'data-widget="equity-glance"' in _page(client)
    admin = staff_user(env.institution, "admin")
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        flag_kill(environment=env, flag=Flag.objects.get(pk=flag.pk), actor=admin, reason="bug")
    assert 'data-widget="equity-glance"' not in _page(client)


def test_dashboard__same_home_figures_in_two_tenants__each_sees_its_own(tenant, other_tenant):
    ours = MemberFactory(environment=tenant.production)
    theirs = MemberFactory(environment=other_tenant.production)
    _home(ours, value=D(300000))
    _home(theirs, value=D(700000))
    assert "$300,000" in _page(member_client(ours))
    html = _page(member_client(theirs))
    assert "$700,000" in html
    assert "$300,000" not in html
