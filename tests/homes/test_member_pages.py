import datetime
import json
import re
import shutil
import subprocess
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY
from homes.models import Lien, Member, MemberOffer, Property
from homes.selectors import home_summaries
from homes.services import EnrollmentError, member_opt_in, properties_recompute
from institutions.tenancy import environment_scope
from notifications.models import NotificationSettings
from notifications.services.campaigns import campaign_plan
from tests.conftest import make_tenant, member_client
from tests.homes.factories import (
    LienFactory,
    OfferProductFactory,
    PropertyFactory,
    ValuationFactory,
    home_settings_factory,
    institution_today,
    zone_off_utc_date,
)

pytestmark = pytest.mark.django_db


def _home(member, *, valuations=1, liens=1, offers=1, value=D(300000)):
    env = member.environment
    today = institution_today(env)
    home_settings_factory(env, min_confidence=50)
    prop = PropertyFactory(environment=env, member=member)
    for i in range(valuations):
        ValuationFactory(
            environment=env, property=prop, value=value - i * 1000, low=value - 50000,
            high=value + 50000, as_of=today - datetime.timedelta(days=30 * i),
        )  # fmt: skip
    for i in range(liens):
        LienFactory(
            environment=env, property=prop, position=i + 1, balance=D(200000) // liens,
            original_amount=D(200000) // liens,
        )  # fmt: skip
    products = [
        OfferProductFactory(environment=env, max_existing_liens=9, title=f"Line {i}")
        for i in range(offers)
    ]
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(
            value=value, value_low=value - 50000, value_high=value + 50000, confidence=80,
            valued_on=today,
        )  # fmt: skip
        properties_recompute(environment=env)
        prop.refresh_from_db()
    return prop, products


def _home_with_mortgage(member, *, value: D, balance: D) -> Property:
    """The member's home, valued at `value`, with one first mortgage of `balance`, its
    figures computed as the services compute them."""
    env = member.environment
    home_settings_factory(env, min_confidence=50)
    prop = PropertyFactory(environment=env, member=member)
    LienFactory(environment=env, property=prop, original_amount=max(balance, D(1)), balance=balance)
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(
            value=value, value_low=value * D("0.95"), value_high=value * D("1.05"),
            confidence=80, valued_on=institution_today(env),
        )  # fmt: skip
        properties_recompute(environment=env)
        prop.refresh_from_db()
    return prop


def test_dashboard__shows_value_equity_formula_chart_and_offers(member, recorded):
    _prop, (product,) = _home(member, valuations=3)
    recorded.clear()  # setting the home up emits offer_matched; the page is what we check
    response = member_client(member).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "$300,000" in html
    assert "$100,000" in html
    assert "80% of your home's value ($300,000 \u00d7 0.80 = $240,000)" in html
    assert "<svg" in html
    assert html.count('class="dot"') == 3
    assert f"/offers/{product.pk}/" in html
    assert [e.name for e in recorded] == ["dashboard_viewed"]


def test_dashboard__negative_equity__shown_as_minus_dollars_not_dollar_minus(member):
    """A member who owes $450,000 on a home estimated at $400,000 reads "Equity \u2212$50,000":
    the minus sign (U+2212, which screen readers read as "minus") before the currency
    symbol, as US amounts are written, and as the lien lines above it show what is owed."""
    _home_with_mortgage(member, value=D(400000), balance=D(450000))
    html = member_client(member).get("/").content.decode()
    total = re.search(r'<tr class="total"><th scope="row">Equity</th><td>([^<]*)</td>', html)
    assert total, "no equity line on the dashboard"
    assert total.group(1) == "\u2212$50,000", f"equity shown as {total.group(1)!r}"
    assert "<td>\u2212$450,000</td>" in html  # the first mortgage, taken away


def test_dashboard__what_if_without_javascript__server_computes_the_figure(member):
    _home(member)
    response = member_client(member).get("/?value=350000")
    assert 'Then you could borrow <strong id="whatif-power">$80,000</strong>' in (
        response.content.decode()
    )
    assert member_client(member).get("/?value=nonsense").status_code == 200


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1e30", "$450,000"), ("9" * 40, "$450,000"), ("-1e29", "$150,000"), ("1e-30", "$150,000")],
)
def test_dashboard__what_if_beyond_any_range__clamped_to_the_slider_not_a_500(member, value, shown):
    _home(member)  # $300,000: the slider runs from $150,000 to $450,000
    client = member_client(member)
    client.raise_request_exception = False
    response = client.get("/", {"value": value})
    assert response.status_code == 200, f"?value={value} answered {response.status_code}"
    assert f'<output id="whatif-shown" for="whatif-value">{shown}</output>' in (
        response.content.decode()
    )


WHATIF_JS = Path(__file__).resolve().parents[2] / "static" / "chimney" / "whatif.js"


def _run_whatif_script(dataset: dict, value: str) -> str:
    """Run the page's what-if script in Node with the form's data and the slider at
    `value`, and return the amount it shows."""
    harness = """
const fs = require("fs");
const [path, dataset, value] = [process.argv[1], JSON.parse(process.argv[2]), process.argv[3]];
let onInput = null;
const elements = {
  "whatif": { dataset },
  "whatif-value": { value, addEventListener: (_name, fn) => { onInput = fn; } },
  "whatif-shown": {},
  "whatif-power": {},
};
global.document = { getElementById: (id) => elements[id] || null };
eval(fs.readFileSync(path, "utf8"));
onInput();
process.stdout.write(elements["whatif-power"].textContent);
"""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    done = subprocess.run(
        [node, "-e", harness, str(WHATIF_JS), json.dumps(dataset), value],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def _whatif_dataset(html) -> dict[str, str]:
    """The what-if form's data attributes as the script reads them (form.dataset)."""
    form = re.search(r'<form method="get" class="whatif" id="whatif"([^>]*)>', html).group(1)
    return {
        re.sub(r"-([a-z])", lambda m: m.group(1).upper(), name): value
        for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', form)
    }


@pytest.mark.parametrize(
    ("value", "max_cltv", "owed", "expected"),
    [
        # 0.7 x 350,000 is 244,999.99999999997 in binary floating point.
        (D(350000), D("0.7000"), D(200000), "$45,000"),
        (D(300000), D("0.8000"), D("200000.50"), "$39,999"),  # 39,999.50, rounded down
        (D(260000), D("0.8000"), D(200000), "$0"),  # $8,000: below the $10,000 minimum line
    ],
)
def test_what_if__slider_script_and_server_fallback__show_the_same_amount(
    member, value, max_cltv, owed, expected
):
    """The slider (script) and the "Recalculate" button (server) show the same amount for
    the same value: max CLTV x value - what is owed, rounded down to the dollar."""
    prop, (heloc,) = _home(member)
    env = member.environment
    with environment_scope(env):
        Lien.objects.filter(property=prop).update(balance=owed)
        heloc.max_cltv = max_cltv
        heloc.save()
        properties_recompute(environment=env)
    html = member_client(member).get("/", {"value": str(value)}).content.decode()
    server = re.search(r'<strong id="whatif-power">([^<]+)</strong>', html).group(1)
    assert server == expected
    assert _run_whatif_script(_whatif_dataset(html), str(value)) == server


def _slider(html) -> dict[str, D]:
    tag = re.search(r'<input type="range"[^>]*>', html).group(0)
    return {
        name: D(re.search(rf'{name}="([^"]+)"', tag).group(1))
        for name in ("min", "max", "step", "value")
    }


def test_dashboard__what_if_slider__the_homes_value_lies_on_the_step_grid(member):
    # A range input's steps count from its min: were the min off the value's $1,000 grid,
    # the browser would snap the knob (and a no-JavaScript "Recalculate" would submit) a
    # value that is not the home's.
    _home(member, value=D(312345))
    slider = _slider(member_client(member).get("/").content.decode())
    assert slider["value"] == D(312345)
    assert slider["step"] == D(1000)
    assert (slider["value"] - slider["min"]) % slider["step"] == 0, slider
    assert (slider["max"] - slider["value"]) % slider["step"] == 0, slider
    assert (slider["min"], slider["max"]) == (D(156345), D(468345))  # about half either way


def test_dashboard__formula_of_an_875_cltv__factor_printed_unrounded_and_arithmetic_holds(
    member,
):
    _, (heloc,) = _home(member)
    env = member.environment
    with environment_scope(env):
        heloc.max_cltv = D("0.8750")  # 87.5%: a ratio field holds 4 decimal places
        heloc.save()
        properties_recompute(environment=env)
    html = member_client(member).get("/").content.decode()
    assert "87.5% of your home's value ($300,000 \u00d7 0.875 = $262,500)" in html
    found = re.search(r"\(\$([\d,]+) \u00d7 ([\d.]+) = \$([\d,]+)\)", html)
    value, factor, product = (D(g.replace(",", "")) for g in found.groups())
    assert value * factor == product


def _money(text: str) -> D:
    return D(text.replace("$", "").replace(",", ""))


def test_dashboard__formula_of_a_value_with_a_remainder__arithmetic_gives_the_figure(member):
    """Valued at $300,001 with $200,000 owed: 80% of the value is $240,000.80, so the member
    can borrow $40,000. The "why this number" sentence must add up to the figure it
    explains: the value times the factor, minus what is owed, is the amount shown."""
    _home(member, value=D(300001))
    html = member_client(member).get("/").content.decode()
    shown = re.search(
        r'<h2 id="power-h">What you could borrow</h2>\s*<p class="big">([^<]+)<', html
    )
    formula = re.search(
        r"\(\$([\d,.]+) \u00d7 ([\d.]+) = \$([\d,.]+)\), minus what you owe \(\$([\d,.]+)\)",
        html,
    )
    assert shown, "no borrowing power on the dashboard"
    assert formula, "no formula on the dashboard"
    power = _money(shown.group(1))
    _value, _factor, product, owed = (_money(g) for g in formula.groups())
    assert power == D(40000)
    assert product - owed == power, (
        f"formula reads ${product:,} - ${owed:,} = ${product - owed:,}, figure ${power:,}"
    )


def _count(client) -> tuple[int, int]:
    """Queries of a view that renders the whole page (a what-if value is never kept),
    and of one served the kept page."""
    # Warm the per-process host and branding caches first: the count is per request.
    assert client.get("/").status_code == 200
    counts = []
    for path in ("/?value=312345", "/"):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        counts.append(len(ctx.captured_queries))
    return counts[0], counts[1]


def test_dashboard__query_count__same_for_no_one_or_many_offers_and_rows(tenant, other_tenant):
    from tests.factories import MemberFactory

    one = MemberFactory(environment=tenant.production)
    many = MemberFactory(environment=tenant.production)
    # Another environment, which offers no products: no offer, no line match.
    none = MemberFactory(environment=other_tenant.production)
    _home(one)
    _home(many, valuations=12, liens=3, offers=6, value=D(900000))
    _home(none, offers=0)
    rendered, kept = _count(member_client(one))
    assert _count(member_client(many)) == (rendered, kept)
    assert _count(member_client(none)) == (rendered, kept)
    # Both: the session and the request metrics (database and per request in tests), the
    # member with home and offer states, the view event. Rendering adds the liens, the
    # value history and the offers.
    assert (rendered, kept) == (7, 4)


def test_dashboard__display_filter__hides_figures_without_changing_them(member):
    prop, _ = _home(member)
    home_settings_factory(member.environment, min_confidence=95)
    html = member_client(member).get("/").content.decode()
    assert "$300,000" not in html
    assert "confidently enough" in html
    with environment_scope(member.environment):
        assert Property.objects.get(pk=prop.pk).value == D(300000)


def test_dashboard__head_request__not_counted_as_a_view(member, recorded):
    """A link checker or an email client's preview (HEAD) is not the member viewing the
    dashboard, as it is not for an offer page."""
    _home(member)
    recorded.clear()
    client = member_client(member)
    assert client.head("/").status_code == 200
    assert [e.name for e in recorded if e.name == "dashboard_viewed"] == []
    assert client.get("/").status_code == 200
    assert [e.name for e in recorded if e.name == "dashboard_viewed"] == ["dashboard_viewed"]


@pytest.mark.parametrize(("days_owned", "shown"), [(365, False), (366, True)])
def test_dashboard__min_years_owned__counted_to_the_institutions_date(db, days_owned, shown):
    """A year is 365.25 days: bought 365 days before the institution's today is not yet a
    year, 366 days is, also when UTC's date is a day ahead of or behind the institution's."""
    from tests.factories import MemberFactory

    env = make_tenant(time_zone=zone_off_utc_date()).production
    assert institution_today(env) != timezone.now().date()
    member = MemberFactory(environment=env)
    prop, _ = _home(member)
    home_settings_factory(env, min_years_owned=1)
    bought = institution_today(env) - datetime.timedelta(days=days_owned)
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(purchase_date=bought)
    html = member_client(member).get("/").content.decode()
    assert ("$300,000" in html) is shown
    assert ("owned your home a while" in html) is not shown


def test_offer__view_save_select__recorded_as_state_and_events(member, recorded):
    _, (product,) = _home(member)
    recorded.clear()
    client = member_client(member)
    detail = client.get(f"/offers/{product.pk}/")
    assert detail.status_code == 200
    assert "APR 7.25%" in detail.content.decode()  # disclosures
    assert client.get(f"/offers/{product.pk}/save/").status_code == 405
    assert client.post(f"/offers/{product.pk}/save/").status_code == 302
    assert client.post(f"/offers/{product.pk}/select/").status_code == 302
    names = [(e.name, e.properties) for e in recorded]
    props = {"offer_id": product.pk, "offer_kind": "heloc"}
    assert names == [("offer_viewed", props), ("offer_saved", props), ("offer_selected", props)]
    assert {e.is_test for e in recorded} == {member.is_test}
    with environment_scope(member.environment):
        state = MemberOffer.objects.get(member=member, product=product)
    assert state.saved_at
    assert state.selected_at
    assert state.view_count == 1
    assert "Selected" in client.get("/offers/").content.decode()


def test_enrollment__opt_in__confirms_name_and_address(member):
    prop, _ = _home(member)
    home_settings_factory(member.environment, enrollment_mode="opt_in")
    with environment_scope(member.environment):
        Member.objects.filter(pk=member.pk).update(enrollment="pending")
    client = member_client(member)
    assert client.get("/")["Location"] == "/enroll/"
    bad = client.post(
        "/enroll/", {"full_name": "Someone Else", "street": "1 Nowhere Rd", "postal_code": "1"}
    )
    assert bad.status_code == 400
    assert "does not match" in bad.content.decode()
    good = client.post(
        "/enroll/",
        {
            "full_name": member.full_name.upper(),
            "street": prop.street.replace("Street", "St."),
            "postal_code": prop.postal_code,
        },
    )
    assert good.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("on_record", "typed"),
    [
        ("120 Pine Street Apt 4", "120 Pine St #4"),
        ("120 Pine Street Apartment 4", "120 Pine St Apt 4"),
        ("120 Pine St #4", "120 Pine Street Unit 4"),
        ("77 Lakeview Parkway", "77 Lakeview Pkwy"),
        ("9 Maple Circle", "9 Maple Cir"),
        ("15 Ocean Highway", "15 Ocean Hwy"),
        ("33 Hill Terrace", "33 Hill Ter"),
        ("12 North Main Street", "12 N. Main St."),
    ],
)
def test_opt_in__address_written_with_usual_abbreviations__confirmed(member, on_record, typed):
    """The member confirms their home with the street written as people (and the USPS)
    abbreviate it: the same address is accepted."""
    prop, _ = _home(member)
    env = member.environment
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(street=on_record)
        try:
            member_opt_in(
                environment=env, member=member, full_name=member.full_name, street=typed,
                postal_code=prop.postal_code,
            )  # fmt: skip
        except EnrollmentError as error:
            pytest.fail(f"{typed!r} refused for {on_record!r}: {error.errors}")


@pytest.mark.parametrize(
    "typed",
    ["121 Pine Street Apt 4", "120 Cedar Street Apt 4", "120 Pine Street Apt 5", "120 Pine Ave #4"],
)
def test_opt_in__another_number_street_or_unit__refused(member, typed):
    """Abbreviations aside, the address must be the home's: another house number, street,
    suffix or unit is refused."""
    prop, _ = _home(member)
    env = member.environment
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(street="120 Pine Street Apt 4")
        with pytest.raises(EnrollmentError) as refused:
            member_opt_in(
                environment=env, member=member, full_name=member.full_name, street=typed,
                postal_code=prop.postal_code,
            )  # fmt: skip
    assert set(refused.value.errors) == {"street"}


def test_enrollment__auto__enrolls_on_first_visit(member):
    _home(member)
    with environment_scope(member.environment):
        Member.objects.filter(pk=member.pk).update(enrollment="pending")
    assert member_client(member).get("/").status_code == 200
    member.refresh_from_db()
    assert member.enrollment == "enrolled"


def test_no_home__opts_out_with_the_institutions_message(member):
    home_settings_factory(member.environment, no_home_message="Come back when you buy!")
    client = member_client(member)
    response = client.post("/no-home/")
    assert "Come back when you buy!" in response.content.decode()
    member.refresh_from_db()
    assert member.enrollment == "opted_out"
    assert "Come back when you buy!" in client.get("/").content.decode()


def test_no_home__pressed_again__records_the_opt_out_once(member, recorded):
    from institutions.models import AuditEntry

    client = member_client(member)
    for _press in range(3):
        assert client.post("/no-home/").status_code == 200
    member.refresh_from_db()
    assert member.enrollment == "opted_out"
    assert [e.name for e in recorded] == ["member_opted_out"]
    entries = AuditEntry.objects.filter(object_type="homes.Member", object_id=str(member.pk))
    assert entries.count() == 1


def test_enroll__already_enrolled__sent_home_and_nothing_recorded_again(member, recorded):
    from institutions.models import AuditEntry

    prop, _ = _home(member)
    home_settings_factory(member.environment, enrollment_mode="opt_in")
    with environment_scope(member.environment):
        Member.objects.filter(pk=member.pk).update(enrollment="pending")
    client = member_client(member)
    confirm = {"full_name": member.full_name, "street": prop.street,
               "postal_code": prop.postal_code}  # fmt: skip
    recorded.clear()
    for _press in range(2):
        assert client.post("/enroll/", confirm)["Location"] == "/"
    assert client.get("/enroll/")["Location"] == "/"
    assert [e.name for e in recorded] == ["member_enrolled"]
    entries = AuditEntry.objects.filter(object_type="homes.Member", object_id=str(member.pk))
    assert entries.count() == 1


def test_member_pages__signed_in__private_to_the_browser(member):
    _, (product,) = _home(member)
    client = member_client(member)
    # The dashboard twice: rendered, then served from the kept page.
    for path in ("/", "/", "/?value=350000", "/offers/", f"/offers/{product.pk}/"):
        response = client.get(path)
        assert response.status_code == 200
        assert "private" in response["Cache-Control"], path


def test_tile__embeddable_only_by_banking_origins(member):
    institution = member.environment.institution
    institution.digital_banking_origins = ["https://banking.example.com"]
    institution.save()
    _home(member)
    response = member_client(member).get("/tile/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://banking.example.com"
    )
    assert "X-Frame-Options" not in response
    assert "Check my home value" in response.content.decode()
    assert "$300,000" in response.content.decode()
    assert member_client(member).get("/offers/")["X-Frame-Options"] == "DENY"


def test_home_summaries__bulk_contract(tenant, django_assert_num_queries):
    from tests.factories import MemberFactory

    members = [MemberFactory(environment=tenant.production) for _ in range(3)]
    props = [_home(m, valuations=3)[0] for m in members]
    with environment_scope(tenant.production), django_assert_num_queries(5):
        summaries = home_summaries(
            environment=tenant.production, member_ids=[m.pk for m in members] + [999999]
        )
    assert set(summaries) == {m.pk for m in members}
    s = summaries[members[0].pk]
    assert (s.property_id, s.value, s.equity, s.member_rate) == (
        props[0].pk, D(300000), D(100000), D("6.000"),
    )  # fmt: skip
    assert s.previous_value == D(299000)  # the valuation 30 days before
    assert s.change_pct == D("0.3")
    assert s.top_offer_path.startswith("/offers/")
    assert s.top_offer_title == "Line 0"


def test_refinance_alert__first_mortgage_paid_off__not_sent(member):
    """A member whose only mortgage (at 7.5%) is paid off pays no rate: the refinance alert
    must not tell them "below the 7.5% on your mortgage"."""
    prop, _ = _home(member)
    env = member.environment
    with environment_scope(env):
        Lien.objects.filter(property=prop).update(rate=D("7.500"), balance=D(0))
        properties_recompute(environment=env)
        NotificationSettings.objects.update_or_create(
            environment=env,
            defaults={"market_rate": D("6.000"), "refinance_threshold": D("0.750")},
        )
        assert (
            home_summaries(environment=env, member_ids=[member.pk])[member.pk].member_rate is None
        )
        _plan, wanted = campaign_plan(
            environment=env, campaign="refinance_alert", period="2026-05", member_ids=[member.pk]
        )
    assert wanted == []


def test_dashboard__equity_widget__shown_to_the_test_cohort_only(tenant):
    from tests.factories import MemberFactory
    from tests.flags.factories import FlagFactory

    FlagFactory(environment=tenant.production, name="dashboard_equity_widget", test_cohort=True)
    tester = MemberFactory(environment=tenant.production, is_test=True)
    real = MemberFactory(environment=tenant.production, is_test=False)
    _home(tester)
    _home(real)
    # Two "devices" each: separate clients, so no cookie or session carries the answer.
    for _device in range(2):
        assert 'data-widget="equity-glance"' in member_client(tester).get("/").content.decode()
        assert 'data-widget="equity-glance"' not in member_client(real).get("/").content.decode()


def test_dashboard_reads__member_home_states_appointment__one_query_with_the_database_types(
    member, other_tenant
):
    from django.utils import timezone

    from homes.selectors import member_home_and_states, signed_in
    from homes.services import offer_save, offer_select

    prop, (saved, chosen, _untouched) = _home(member, offers=3)
    env = member.environment
    with environment_scope(env):
        offer_save(environment=env, member=member, product=saved)
        offer_select(environment=env, member=member, product=chosen)
        with CaptureQueriesContext(connection) as queries:
            found = signed_in(env, member.pk, now=timezone.now())
    assert len(queries) == 1
    assert found.member.email == member.email
    assert found.upcoming_appointment is False
    home, states = found.home, found.states
    assert home.pk == prop.pk
    assert home.value == D(300000)
    assert isinstance(home.value, D)
    assert home.valued_on == institution_today(env)
    assert home.computed_at is not None
    assert home.computed_at.tzinfo is not None
    assert set(states) == {saved.pk, chosen.pk}
    assert states[saved.pk].saved_at is not None
    assert states[saved.pk].selected_at is None
    assert states[chosen.pk].selected_at.tzinfo is not None
    with environment_scope(env):
        assert member_home_and_states(env, member) == (home, states)
    # Another environment's member and home are never found through this one.
    other = other_tenant.production
    assert signed_in(other, member.pk, now=timezone.now()) is None
    assert member_home_and_states(other, member) == (None, {})


def test_signed_in__member_without_home__found_with_no_home_or_states(member):
    from django.utils import timezone

    from homes.selectors import signed_in

    found = signed_in(member.environment, member.pk, now=timezone.now())
    assert (found.member.pk, found.home, found.states) == (member.pk, None, {})


def test_settle_member__lazy_member_replaced_by_the_plain_objects(member, rf):
    from django.utils.functional import SimpleLazyObject

    from homes.middleware import MemberMiddleware, settle_member
    from homes.selectors import SignedIn

    def request_with(session):
        request = rf.get("/")
        request.environment, request.session = member.environment, session
        return MemberMiddleware(lambda r: r)(request)

    signed = request_with(
        {MEMBER_SESSION_KEY: member.pk, MEMBER_ENV_SESSION_KEY: member.environment_id}
    )
    assert isinstance(signed.member, SimpleLazyObject)
    found = settle_member(signed)
    assert found.pk == member.pk
    assert type(found) is Member
    assert signed.member is found
    assert type(signed.signed_in) is SignedIn
    assert signed.signed_in.member is found
    assert settle_member(signed) is found  # settled once; the second call reads nothing

    anonymous = request_with({})
    assert settle_member(anonymous) is None
    assert anonymous.member is None
    assert anonymous.signed_in is None


def test_offer_detail__display_filter__shows_terms_but_not_the_members_figures(member):
    _, (product,) = _home(member)
    client = member_client(member)
    assert "$40,000" in client.get(f"/offers/{product.pk}/").content.decode()
    home_settings_factory(member.environment, min_confidence=95)  # this home scores 80
    html = client.get(f"/offers/{product.pk}/").content.decode()
    assert "$40,000" not in html
    assert "APR 7.25%" in html  # the product's own terms and disclosures still show


def test_opt_in_pending__tile_and_offers__show_no_figures_and_take_no_action(member, recorded):
    _, (product,) = _home(member)
    home_settings_factory(member.environment, enrollment_mode="opt_in")
    with environment_scope(member.environment):
        Member.objects.filter(pk=member.pk).update(enrollment="pending")
    client = member_client(member)
    tile = client.get("/tile/").content.decode()
    assert "Check my home value" in tile
    assert "$300,000" not in tile
    assert client.get(f"/offers/{product.pk}/")["Location"] == "/enroll/"
    recorded.clear()
    assert client.post(f"/offers/{product.pk}/select/")["Location"] == "/enroll/"
    assert recorded == []
    with environment_scope(member.environment):
        assert not MemberOffer.objects.filter(member=member).exists()


def test_tile__auto_enrollment__pending_member_sees_figures(member):
    _home(member)  # the institution enrolls automatically (the default)
    with environment_scope(member.environment):
        Member.objects.filter(pk=member.pk).update(enrollment="pending")
    assert "$300,000" in member_client(member).get("/tile/").content.decode()


def test_dashboard__line_products_none_fits__no_what_if_that_contradicts_zero(member):
    prop, (heloc,) = _home(member, liens=2)
    with environment_scope(member.environment):
        heloc.max_existing_liens = 1  # two liens: this home qualifies for no line
        heloc.save()
        properties_recompute(environment=member.environment)
        prop.refresh_from_db()
    assert prop.borrowing_power == 0
    html = member_client(member).get("/").content.decode()
    assert "None of our lines of credit fits your home" in html
    assert 'id="whatif"' not in html
    assert "Then you could borrow" not in html


def test_dashboard__no_line_products__formula_of_the_default_cltv(member):
    prop, (heloc,) = _home(member)
    with environment_scope(member.environment):
        heloc.is_active = False
        heloc.save()
        properties_recompute(environment=member.environment)
        prop.refresh_from_db()
    # The settings' default CLTV (0.80): $300,000 x 0.80 - $200,000.
    assert prop.borrowing_power == D(40000)
    html = member_client(member).get("/").content.decode()
    assert 'Then you could borrow <strong id="whatif-power">$40,000</strong>' in html


def test_member_opt_out__second_request_read_the_member_before_the_first_committed__once(
    member, recorded
):
    """Two "I don't own a home" requests at the same moment both read the member enrolled;
    the second finds the row opted out under its lock and records nothing again."""
    from homes.services import member_opt_out
    from institutions.models import AuditEntry

    environment = member.environment
    with environment_scope(environment):
        read_by_second = Member.objects.get(pk=member.pk)
        first = member_opt_out(environment=environment, member=member)
        second = member_opt_out(environment=environment, member=read_by_second)
    assert second.enrollment == "opted_out"
    assert second.opted_out_at == first.opted_out_at  # the first opt-out's time is kept
    assert [e.name for e in recorded] == ["member_opted_out"]
    entries = AuditEntry.objects.filter(object_type="homes.Member", object_id=str(member.pk))
    assert entries.count() == 1


def test_member_pages__liens_far_above_the_value__pages_show_the_large_cltv(tenant):
    """A vendor value typed without a digit ($5,000 under $600,000 of liens: a CLTV of 120)
    is stored as computed, and the member's pages read it: the CLTV once overflowed its
    column (the recompute failed on PostgreSQL; on SQLite every read of the home did)."""
    from tests.factories import MemberFactory
    from tests.flags.factories import FlagFactory

    env = tenant.production
    FlagFactory(environment=env, name="dashboard_equity_widget", test_cohort=True)
    tester = MemberFactory(environment=env, is_test=True)
    prop = PropertyFactory(environment=env, member=tester)
    LienFactory(environment=env, property=prop, original_amount=D(600000), balance=D(600000))
    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(
            value=D(5000), value_low=D(4500), value_high=D(5500), confidence=80,
            valued_on=institution_today(env),
        )  # fmt: skip
        properties_recompute(environment=env)
        prop.refresh_from_db()
    assert (prop.ltv, prop.cltv, prop.equity) == (D(120), D(120), D(-595000))
    client = member_client(tester)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "combined loan-to-value 12000.0%" in html
    assert 'data-widget="equity-glance"' in html
    # The bar is full, not 120 times the card's width, and no negative share "is yours".
    assert '<span class="owed" style="width: 100%">' in html
    assert "is yours" not in html
    assert "you owe more than the home is estimated to be worth" in html
    for page in ("/offers/", "/tile/"):
        assert client.get(page).status_code == 200, page
