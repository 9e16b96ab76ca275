"""The member's offers: withdrawn products, saved offers, what counts as a view or a choice,
and what the offers and the messages about them show."""

import re
from decimal import Decimal as D

import pytest

from homes.models import Lien, MemberOffer, OfferProduct
from homes.selectors import home_summaries
from homes.services import offer_product_save, properties_recompute
from institutions.tenancy import environment_scope
from notifications.services.campaigns import campaign_plan
from tests.conftest import member_client
from tests.homes.factories import OfferProductFactory, home_settings_factory
from tests.homes.test_member_pages import _home

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_recompute(monkeypatch):
    """The recompute that follows a product change has not run yet (it is a task)."""
    from homes import tasks

    monkeypatch.setattr(tasks.recompute_matches, "delay", lambda *args, **kwargs: None)


def _withdraw(product, django_capture_on_commit_callbacks) -> None:
    env = product.environment
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        product = OfferProduct.objects.get(pk=product.pk)
        product.is_active = False
        offer_product_save(environment=env, product=product)


def _html(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def test_offer_withdrawn__before_the_recompute__not_offered_on_the_dashboard_or_the_list(
    member, no_recompute, django_capture_on_commit_callbacks
):
    _, (kept, withdrawn) = _home(member, offers=2)
    client = member_client(member)
    assert f"/offers/{withdrawn.pk}/" in _html(client, "/")
    _withdraw(withdrawn, django_capture_on_commit_callbacks)
    assert client.get(f"/offers/{withdrawn.pk}/").status_code == 404  # its page is gone
    for path in ("/", "/offers/"):
        html = _html(client, path)
        assert f"/offers/{withdrawn.pk}/" not in html, path
        assert f"/offers/{kept.pk}/" in html, path


def test_home_summaries__best_offer_withdrawn_before_the_recompute__next_active_one(
    member, no_recompute, django_capture_on_commit_callbacks
):
    prop, products = _home(member, offers=2)
    env = member.environment
    with environment_scope(env):
        ranked = list(prop.offer_matches.order_by("rank").values_list("product_id", flat=True))
    best, second = (next(p for p in products if p.pk == pk) for pk in ranked)
    _withdraw(best, django_capture_on_commit_callbacks)
    with environment_scope(env):
        summary = home_summaries(environment=env, member_ids=[member.pk])[member.pk]
    assert (summary.top_offer_title, summary.top_offer_path) == (
        second.title,
        f"/offers/{second.pk}/",
    )
    _withdraw(second, django_capture_on_commit_callbacks)
    with environment_scope(env):
        summary = home_summaries(environment=env, member_ids=[member.pk])[member.pk]
    assert (summary.top_offer_title, summary.top_offer_path) == (None, None)


def test_offer_save__not_among_the_matches__listed_under_saved_offers(member):
    _, (matched,) = _home(member)
    # An active product the home does not match (it has a lien; the product allows none):
    # its page is open to the member, who saves it.
    other = OfferProductFactory(
        environment=member.environment, title="Other line", max_existing_liens=0
    )
    client = member_client(member)
    assert client.get(f"/offers/{other.pk}/").status_code == 200
    saved = client.post(f"/offers/{other.pk}/save/", follow=True)
    assert "find it under your offers" in saved.content.decode()
    html = _html(client, "/offers/")
    assert "Saved offers" in html
    assert f"/offers/{other.pk}/" in html
    assert html.count(f"/offers/{matched.pk}/") == 1  # a match is not listed twice


def test_offers_page__saved_offer_withdrawn__not_listed(
    member, no_recompute, django_capture_on_commit_callbacks
):
    _home(member)
    other = OfferProductFactory(environment=member.environment, max_existing_liens=0)
    client = member_client(member)
    client.post(f"/offers/{other.pk}/save/")
    assert f"/offers/{other.pk}/" in _html(client, "/offers/")
    _withdraw(other, django_capture_on_commit_callbacks)
    html = _html(client, "/offers/")
    assert f"/offers/{other.pk}/" not in html
    assert "Saved offers" not in html


def test_offer_detail__head_request__not_counted_as_a_view(member, recorded):
    _, (product,) = _home(member)
    client = member_client(member)
    recorded.clear()
    assert client.head(f"/offers/{product.pk}/").status_code == 200
    assert recorded == []
    with environment_scope(member.environment):
        assert not MemberOffer.objects.filter(member=member, product=product).exists()
    assert client.get(f"/offers/{product.pk}/").status_code == 200
    assert [e.name for e in recorded] == ["offer_viewed"]
    with environment_scope(member.environment):
        assert MemberOffer.objects.get(member=member, product=product).view_count == 1


def test_offer_save_then_select__one_visit__counted_as_one_view(member, recorded):
    """The member opens an offer, saves it and selects it: each button brings them back
    to the same page, which is not a new view of the offer (the funnel lending staff read
    would otherwise show three views for one visit). Opened again later, it is."""
    _, (product,) = _home(member)
    client = member_client(member)
    recorded.clear()
    assert client.get(f"/offers/{product.pk}/").status_code == 200
    saved = client.post(f"/offers/{product.pk}/save/", follow=True)
    assert "find it under your offers" in saved.content.decode()
    selected = client.post(f"/offers/{product.pk}/select/", follow=True)
    assert "You selected this offer" in selected.content.decode()
    assert [e.name for e in recorded] == ["offer_viewed", "offer_saved", "offer_selected"]
    with environment_scope(member.environment):
        assert MemberOffer.objects.get(member=member, product=product).view_count == 1
    assert client.get(f"/offers/{product.pk}/").status_code == 200
    with environment_scope(member.environment):
        assert MemberOffer.objects.get(member=member, product=product).view_count == 2


@pytest.mark.parametrize("action", ["save", "select"])
def test_offer_action__pressed_twice__recorded_once_and_first_time_kept(member, recorded, action):
    """A double press (or a resubmitted form) of "Save for later" or "select this offer"
    records one event, and the offer keeps the time the member first chose it: lending
    staff count selections from these events."""
    _, (product,) = _home(member)
    client = member_client(member)
    assert client.post(f"/offers/{product.pk}/{action}/").status_code == 302
    with environment_scope(member.environment):
        first = MemberOffer.objects.get(member=member, product=product)
    assert client.post(f"/offers/{product.pk}/{action}/").status_code == 302
    with environment_scope(member.environment):
        again = MemberOffer.objects.get(member=member, product=product)
    field, event = {
        "save": ("saved_at", "offer_saved"),
        "select": ("selected_at", "offer_selected"),
    }[action]
    assert [e.name for e in recorded if e.name == event] == [event]
    assert getattr(again, field) == getattr(first, field)


def test_offer_summary__figures_hidden_by_display_filters__no_offer_email(member):
    """A home whose value the institution does not show (confidence 80 under a minimum of
    95) shows no offers on the member's pages; the monthly offer summary must not send
    its best offer either ("With  of equity, here is your best offer")."""
    _home(member)
    env = member.environment
    home_settings_factory(env, min_confidence=95)
    assert "No offers match your home right now." in _html(member_client(member), "/offers/")
    with environment_scope(env):
        summary = home_summaries(environment=env, member_ids=[member.pk])[member.pk]
        plan, _ = campaign_plan(
            environment=env, campaign="offer_summary", period="2026-05", member_ids=[member.pk]
        )
    assert (summary.top_offer_title, summary.top_offer_path) == (None, None)
    assert plan.contexts[member.pk] is None, plan.contexts[member.pk]


def test_pmi_removal_offer__members_mortgage_rate__not_advertised_as_the_offers_apr(member):
    """PMI removal lends nothing and has no APR: the offer must not show the member's own
    mortgage rate (a note rate) as "6.000% APR" beside the PMI it saves."""
    prop, _ = _home(member)
    env = member.environment
    pmi = OfferProductFactory(
        environment=env, name="PMI", kind=OfferProduct.Kind.PMI_REMOVAL, title="Drop your PMI"
    )
    with environment_scope(env):
        Lien.objects.filter(property=prop).update(pmi_monthly=D(120))
        properties_recompute(environment=env)
    client = member_client(member)
    listing = _html(client, "/offers/")
    item = re.search(rf'<li class="offer">\s*<a href="/offers/{pmi.pk}/">.*?</li>', listing, re.S)
    assert item, "PMI removal not offered"
    assert "Stop paying $120 a month in PMI" in item.group(0)
    assert "APR" not in item.group(0), item.group(0)
    detail = _html(client, f"/offers/{pmi.pk}/")
    assert "PMI you could stop paying" in detail
    assert "6.000% APR" not in detail
