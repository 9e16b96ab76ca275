"""The demo's homes steps (`manage.py demo_load`, run by `python3 dev.py run` on every
start): members, homes with sales, values and offers, loaded idempotently: a second start
prints the same logins and leaves what staff and members did meanwhile alone."""

from io import StringIO

import pytest
from django.core.management import call_command

from homes.models import Member, OfferMatch, OfferProduct, Property, Sale, Valuation
from homes.services import member_create, offer_product_save
from institutions.demo import demo_load
from institutions.models import Environment, Institution
from institutions.tenancy import environment_scope
from releases.diff import diff_snapshots
from releases.snapshot import capture


@pytest.fixture
def no_recorded_sales(monkeypatch, tmp_path):
    # Without the 17,233 King County sales the demo still makes members, homes (mock values
    # in staging), offers, officers, templates and flags, in a fraction of the time.
    monkeypatch.setenv("CHIMNEY_SALES_CSV", str(tmp_path / "no-sales.csv"))


def demo_load_command() -> str:
    out = StringIO()
    call_command("demo_load", stdout=out)
    return out.getvalue()


def cascade(kind: str) -> Environment:
    return Institution.objects.get(slug="cascade").environments.get(kind=kind)


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_load__homes_with_sales_values_history_and_offers__idempotent():
    demo_load()
    counts = {}
    for env in Environment.objects.all():
        with environment_scope(env):
            counts[env.pk] = (Property.objects.count(), Valuation.objects.count())
            assert Sale.objects.count() == 17233
            assert Property.objects.filter(value__isnull=False).count() == 12
            assert Valuation.objects.count() > 12 * 20  # a value history for the chart
            assert OfferMatch.objects.filter(product__kind="heloc").exists()
    demo_load()
    for env in Environment.objects.all():
        with environment_scope(env):
            assert (Property.objects.count(), Valuation.objects.count()) == counts[env.pk]


@pytest.mark.django_db
def test_demo_load__run_a_second_time__still_prints_the_member_logins(no_recorded_sales):
    """A developer who restarts `dev.py run` (the usual second day) gets no member to sign
    in with: the lines "member (staging, …): <email> — sign in at …/login/" are printed on
    the first start only. They should be printed on every start, like the staff logins."""
    first = demo_load_command()
    second = demo_load_command()
    first_members = [line for line in first.splitlines() if "member (" in line]
    assert len(first_members) == 4  # two institutions, staging and production each
    assert [line for line in second.splitlines() if "member (" in line] == first_members


@pytest.mark.django_db
def test_demo_load__member_added_since__is_not_given_a_made_up_home(no_recorded_sales):
    """A member who came in after the demo (integration API, a digital-banking launch link
    for a new external id) and has no home is given an invented house with a mortgage and
    values in production on the next `dev.py run`. Only the demo's own members should get
    demo homes."""
    demo_load()
    env = cascade("production")
    with environment_scope(env):
        newcomer = member_create(
            environment=env,
            email="newcomer@example.com",
            external_id="CORE-77",
            enrollment=Member.Enrollment.ENROLLED,
            actor_label="digital banking launch",
        )
    demo_load()
    with environment_scope(env):
        assert list(Property.objects.filter(member=newcomer).values_list("street", flat=True)) == []


@pytest.mark.django_db
def test_demo_load__run_again_after_an_offer_is_renamed__adds_no_second_offer(no_recorded_sales):
    """Marketing renames the demo's "HELOC" offer in staging; the next `dev.py run` adds a
    fresh "HELOC" product beside it, so members see two HELOC offers and the next release
    shows an offer staff never made. The demo's offers should be made once."""
    demo_load()
    env = cascade("staging")
    with environment_scope(env):
        heloc = OfferProduct.objects.get(name="HELOC")
        heloc.name = "Cascade HELOC"
        offer_product_save(environment=env, product=heloc, actor_label="marketing")
        before = OfferProduct.objects.count()
    demo_load()
    with environment_scope(env):
        assert sorted(OfferProduct.objects.values_list("name", flat=True)) == sorted(
            ["Cascade HELOC", "Home equity loan", "Rate-and-term refinance", "PMI removal"]
        )
        assert OfferProduct.objects.count() == before


@pytest.mark.django_db
def test_demo_load__fresh_demo__staging_and_production_configuration_match(no_recorded_sales):
    """Scenario 2: marketing edits the HELOC copy and the brand colour in staging and "the
    diff shows exactly the two changes". On the demo data a release made before any edit
    already shows a change (Home settings · provider order: production ["comparable",
    "vendor"], staging ["comparable", "mock"]), so the diff never shows just the two. The
    demo's two environments should start with the same promotable configuration."""
    demo_load()
    entries = diff_snapshots(capture(cascade("production")), capture(cascade("staging")))
    assert [(e["model"], [f["field"] for f in e["fields"]]) for e in entries] == []
