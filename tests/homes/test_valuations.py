import datetime
import random
from decimal import Decimal as D

import pytest
from django.utils import timezone

from homes.models import Property, RefreshRun, Sale, Valuation, VendorValue
from homes.services import (
    VendorImportError,
    parse_vendor_csv,
    refresh_run,
    refresh_start,
    vendor,
    vendor_values_import,
)
from homes.services.refresh import RefreshStopped
from homes.services.sync import REFRESH_GRACE
from homes.tasks import equity_tick, refresh_valuations
from homes.valuation.providers import (
    MockProvider,
    ValuationProvider,
    ValueResult,
    providers_for,
    sales_estimator,
    value_properties,
)
from institutions.tenancy import environment_scope
from tests.homes.factories import PropertyFactory, home_settings_factory, institution_today

pytestmark = pytest.mark.django_db


class Fixed(ValuationProvider):
    def __init__(self, name, answers):
        self.name, self.answers, self.asked = name, answers, []

    def value_many(self, properties, as_of):
        self.asked.append([p.pk for p in properties])
        return {pk: r for pk, r in self.answers.items() if pk in {p.pk for p in properties}}


def _result(value, fsd):
    return ValueResult(D(value), D(value) * D("0.9"), D(value) * D("1.1"), D(fsd), 70)


def test_value_properties__moves_on_when_no_answer_or_fsd_above_threshold(scoped):
    a, b, c = (PropertyFactory(environment=scoped) for _ in range(3))
    first = Fixed("comparable", {a.pk: _result(100, "0.10"), b.pk: _result(200, "0.30")})
    second = Fixed("vendor", {b.pk: _result(210, "0.05"), c.pk: _result(300, "0.08")})
    chosen = value_properties(
        [a, b, c], [first, second], fsd_threshold=D("0.20"), as_of=institution_today(scoped)
    )
    assert chosen[a.pk][0] == "comparable"
    assert chosen[b.pk] == ("vendor", _result(210, "0.05"))  # comparable's FSD too high
    assert chosen[c.pk][0] == "vendor"
    assert second.asked == [[b.pk, c.pk]]


def test_value_properties__answer_older_than_the_homes_value__no_answer_the_next_is_asked(
    scoped,
):
    """A value dated before the home's current one must not set the member's value and its
    date back: it is no answer, and the next provider is asked."""
    today = institution_today(scoped)
    valued, new = PropertyFactory(environment=scoped), PropertyFactory(environment=scoped)
    Property.objects.filter(pk=valued.pk).update(value=D(400), valued_on=today)
    valued.refresh_from_db()
    last_month = today - datetime.timedelta(days=30)
    older = ValueResult(D(300), D(270), D(330), D("0.05"), 70, as_of=last_month)
    first = Fixed("vendor", {valued.pk: older, new.pk: older})
    second = Fixed("comparable", {valued.pk: _result(410, "0.05")})
    chosen = value_properties([valued, new], [first, second], fsd_threshold=D("0.20"), as_of=today)
    assert chosen == {valued.pk: ("comparable", _result(410, "0.05")), new.pk: ("vendor", older)}
    # As of an earlier day than the home's value, no provider's answer is taken.
    assert value_properties([valued], [second], fsd_threshold=D("0.20"), as_of=last_month) == {}


def test_mock_provider__is_deterministic(scoped):
    prop = PropertyFactory(environment=scoped)
    today = institution_today(scoped)
    one = MockProvider().value_many([prop], today)[prop.pk]
    assert one == MockProvider().value_many([prop], today)[prop.pk]
    assert one.low < one.value < one.high


def test_providers_for__production__skips_the_mock_even_when_a_promoted_order_lists_it(tenant):
    order = ["vendor", "mock"]
    assert [p.name for p in providers_for(tenant.staging, order)] == ["vendor", "mock"]
    assert [p.name for p in providers_for(tenant.production, order)] == ["vendor"]


def _sales(environment, n=80):
    rng = random.Random(7)
    today = institution_today(environment)
    rows = []
    for i in range(n):
        sqft = rng.randint(1000, 3500)
        rows.append(
            Sale(
                environment=environment,
                external_id=f"S{i}",
                price=D(sqft * 300 + rng.randint(-20000, 20000)),
                latitude=47.66 + rng.uniform(-0.02, 0.02),
                longitude=-122.34 + rng.uniform(-0.02, 0.02),
                living_sqft=sqft,
                year_built=rng.randint(1950, 2010),
                lot_sqft=5000,
                bedrooms=3,
                bathrooms=2.0,
                sale_date=today - datetime.timedelta(days=rng.randint(1, 300)),
            )
        )
    Sale.objects.bulk_create(rows)


def test_sales_estimator__rebuilt_when_a_sale_is_corrected_in_any_field_it_reads(scoped):
    _sales(scoped, 40)
    first = sales_estimator(scoped)
    assert sales_estimator(scoped) is first  # built once per set of sales
    # Fields beyond price, place and size count too: each correction gives a new estimator.
    changes = {"bedrooms": 4, "bathrooms": 3.5, "condition": 5, "zipcode": "98103"}
    seen = [first]
    for field, value in changes.items():
        Sale.objects.filter(external_id="S3").update(**{field: value})
        estimator = sales_estimator(scoped)
        assert all(estimator is not other for other in seen), field
        seen.append(estimator)


def test_refresh__comparable_sales_then_mock__values_records_history_and_resumes(staging):
    home_settings_factory(staging, provider_order=["comparable", "mock"])
    _sales(staging)
    near = [PropertyFactory(environment=staging) for _ in range(5)]
    far = [PropertyFactory(environment=staging, latitude=40.0, longitude=-100.0) for _ in range(2)]
    run = refresh_start(environment=staging, actor_label="test", enqueue=False)
    assert run.total == 7
    with pytest.raises(RefreshStopped):
        refresh_run(environment=staging, run=run, batch_size=3, stop_after=1)
    run.refresh_from_db()
    assert (run.status, run.processed, run.cursor) == ("failed", 3, near[2].pk)
    assert Valuation.objects.count() == 3
    refresh_run(environment=staging, run=run, batch_size=3)
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued, run.percent) == ("done", 7, 7, 100)
    providers = dict(Valuation.objects.values_list("property_id", "provider"))
    assert {providers[p.pk] for p in near} == {"comparable"}
    assert {providers[p.pk] for p in far} == {"mock"}  # no comparables within reach
    prop = Property.objects.get(pk=near[0].pk)
    assert D(250000) < prop.value < D(1500000)
    assert prop.equity == prop.value
    # History is kept: a later refresh adds a row; the same day replaces its own.
    refresh_run(environment=staging, run=refresh_start(environment=staging, enqueue=False))
    assert Valuation.objects.filter(property=prop).count() == 1


def test_refresh_task__runs_through_celery_eagerly(staging, django_capture_on_commit_callbacks):
    home_settings_factory(staging, provider_order=["mock"])
    PropertyFactory(environment=staging)
    with django_capture_on_commit_callbacks(execute=True):
        run = refresh_start(environment=staging)
    run.refresh_from_db()
    assert run.status == RefreshRun.Status.DONE
    assert run.valued == 1


CSV_OK = "property,value,low,high,fsd,as_of\n{a},450000,,,0.06,{d}\n{b},300000,280000,330000,,{d}\n"


def test_vendor_csv__good_file__imports_and_revalues(scoped):
    home_settings_factory(scoped, provider_order=["vendor", "mock"])
    a, b = PropertyFactory(environment=scoped), PropertyFactory(environment=scoped)
    today = institution_today(scoped)
    rows = parse_vendor_csv(CSV_OK.format(a=a.external_id, b=b.external_id, d=today).encode())
    result = vendor_values_import(environment=scoped, rows=rows, vendor="acme")
    assert (result.imported, result.properties, result.run) == (2, 2, None)  # revalued now
    a.refresh_from_db()
    assert (a.value, a.valued_on) == (D(450000), today)
    assert Valuation.objects.get(property=a).provider == "vendor"


def test_vendor_value__keeps_the_vendors_date__and_a_stale_one_is_no_answer(scoped):
    """A vendor's value is as of the vendor's date, not the day a refresh used it; one older
    than VENDOR_MAX_AGE is no answer (the next provider is asked; here none answers)."""
    from homes.valuation.providers import VENDOR_MAX_AGE
    from tests.homes.factories import VendorValueFactory

    home_settings_factory(scoped, provider_order=["vendor"])
    recent, stale = PropertyFactory(environment=scoped), PropertyFactory(environment=scoped)
    today = institution_today(scoped)
    dated = today - datetime.timedelta(days=30)
    VendorValueFactory(environment=scoped, property=recent, value=D(410000), as_of=dated)
    VendorValueFactory(
        environment=scoped,
        property=stale,
        value=D(390000),
        as_of=today - VENDOR_MAX_AGE - datetime.timedelta(days=1),
    )
    run = refresh_start(environment=scoped, enqueue=False)
    refresh_run(environment=scoped, run=run)
    recent.refresh_from_db()
    stale.refresh_from_db()
    assert (recent.value, recent.valued_on) == (D(410000), dated)
    assert Valuation.objects.get(property=recent).as_of == dated
    assert not Valuation.objects.filter(property=stale).exists()
    assert (stale.value, stale.valued_on) == (None, None)
    # Used again by the next refresh: the same dated entry, not one more in the history.
    run = refresh_start(environment=scoped, enqueue=False)
    refresh_run(environment=scoped, run=run)
    assert Valuation.objects.filter(property=recent).count() == 1


def test_vendor_value__stored_with_a_range_past_the_money_limit__no_answer_refresh_goes_on(
    scoped,
):
    """A value stored before the import refused it (999,999,999,999 with an FSD of 5%: a
    high end past what a money field holds) is no answer, not a refresh that fails or a
    home that cannot be read back: the home's newest usable value is used instead."""
    from tests.homes.factories import VendorValueFactory

    home_settings_factory(scoped, provider_order=["vendor"])
    both, only = PropertyFactory(environment=scoped), PropertyFactory(environment=scoped)
    today = institution_today(scoped)
    for prop in (both, only):
        VendorValueFactory(environment=scoped, property=prop, value=D(999999999999), as_of=today)
    earlier = today - datetime.timedelta(days=10)
    VendorValueFactory(environment=scoped, property=both, value=D(410000), as_of=earlier)
    run = refresh_run(environment=scoped, run=refresh_start(environment=scoped, enqueue=False))
    assert (run.status, run.valued) == ("done", 1)
    stored = dict(Property.objects.values_list("pk", "value_high"))
    assert stored == {both.pk: D("430500.00"), only.pk: None}
    assert list(Valuation.objects.values_list("property_id", "as_of")) == [(both.pk, earlier)]


def test_vendor_import__large__broker_down__stored_and_the_equity_tick_revalues_them(
    tenant, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """The run of a large import cannot be queued: the import still succeeds, the run waits
    (pending, in the admin) and the homes, marked as waiting, are revalued by the tick."""
    monkeypatch.setattr(vendor, "INLINE_REVALUE_MAX", 1)
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    a, b = PropertyFactory(environment=env), PropertyFactory(environment=env)
    today = institution_today(env)
    rows = parse_vendor_csv(CSV_OK.format(a=a.external_id, b=b.external_id, d=today).encode())

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as broker:
        broker.setattr(refresh_valuations, "delay", broker_down)
        with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
            result = vendor_values_import(environment=env, rows=rows, vendor="acme")
    assert "broker unreachable" in caplog.text
    assert (result.imported, result.properties, result.run.status) == (2, 2, "pending")
    with environment_scope(env):
        assert VendorValue.objects.count() == 2
        assert not Valuation.objects.exists()
    later = timezone.now() + REFRESH_GRACE + datetime.timedelta(seconds=1)
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: later)
        equity_tick.delay()
    with environment_scope(env):
        values = dict(Property.objects.values_list("pk", "value"))
        assert not Property.objects.filter(valuation_requested_at__isnull=False).exists()
    assert values == {a.pk: D(450000), b.pk: D(300000)}


def test_vendor_csv__bad_rows__refused_whole_naming_row_and_field(scoped):
    a = PropertyFactory(environment=scoped)
    today = institution_today(scoped)
    future = today + datetime.timedelta(days=5)
    content = (
        "property,value,low,high,fsd,as_of\n"
        f"{a.external_id},450000,,,0.06,{today}\n"
        f"NOPE,450000,,,0.06,{today}\n"
        f"{a.external_id},-5,,,0.06,{today}\n"
        f"{a.external_id},300000,,,0.06,{future}\n"
        f"{a.external_id},300000,310000,,0.06,2020-01-01\n"
    )
    with pytest.raises(VendorImportError) as info:
        vendor_values_import(environment=scoped, rows=parse_vendor_csv(content))
    named = {(e.row, e.field) for e in info.value.errors}
    assert named == {(2, "property"), (3, "value"), (4, "as_of"), (5, "low"), (5, "as_of")}
    assert "Row 2, property" in str(info.value)
    assert not VendorValue.objects.exists()


def test_vendor_csv__missing_column__refused():
    with pytest.raises(VendorImportError) as info:
        parse_vendor_csv(b"property,as_of\nx,2020-01-01\n")
    assert str(info.value.errors[0]) == "Row 0, value: column is missing."
