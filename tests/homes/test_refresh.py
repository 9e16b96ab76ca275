"""Refresh runs in chunks: stored figures and matches, events, progress, resume, workers."""

import datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scopes_disabled

from flags.models import Event
from homes.models import OfferMatch, Property, RefreshChunk, RefreshRun, Valuation
from homes.services import (
    parse_vendor_csv,
    refresh_run,
    refresh_start,
    refresh_waiting_start,
    vendor_values_import,
)
from homes.services.recompute import Recomputer, lien_terms_by_property
from homes.services.refresh import RefreshStopped, refresh_chunk_run
from homes.services.store import COPY_MIN_ROWS
from institutions.tenancy import environment_scope
from tests.celery_worker import Worker, wait_until
from tests.conftest import make_tenant
from tests.homes.factories import (
    LienFactory,
    OfferProductFactory,
    PropertyFactory,
    VendorValueFactory,
    home_settings_factory,
    institution_today,
    zone_off_utc_date,
)
from tests.services import PrivateRedis, require_postgres, require_redis

HOMES = COPY_MIN_ROWS + 10  # a batch large enough for COPY on PostgreSQL


def _homes(environment, n=HOMES):
    """Homes of many shapes: no lien, one, two; stale and fresh balances; one stale value."""
    home_settings_factory(environment, provider_order=["mock"])
    OfferProductFactory(environment=environment, name="HELOC", max_existing_liens=2)
    OfferProductFactory(
        environment=environment, name="Refi", kind="rate_term_refi", apr=D("5.000"),
        min_amount=D(0), disclosures="APR 5% fixed; 360 monthly payments.",
    )  # fmt: skip
    OfferProductFactory(
        environment=environment, name="PMI", kind="pmi_removal", apr=D(0), term_months=1
    )
    homes = [PropertyFactory(environment=environment, living_sqft=900 + 40 * i) for i in range(n)]
    today = institution_today(environment)
    for i, prop in enumerate(homes):
        if i % 4 == 0:
            continue
        LienFactory(
            environment=environment, property=prop, rate=D("7.250"), pmi_monthly=D(80),
            balance_as_of=today - datetime.timedelta(days=30 * (i % 13)),
        )  # fmt: skip
        if i % 5 == 0:
            LienFactory(
                environment=environment, property=prop, position=2, kind="heloc",
                original_amount=D(40000), balance=D(25000),
            )  # fmt: skip
    unowned = homes[1]
    with environment_scope(environment):
        Property.objects.filter(pk=unowned.pk).update(member=None)
        Property.objects.filter(pk=homes[2].pk).update(value=D(1000))  # stale: will move
    return homes


def _stored_matches(prop_id):
    return list(
        OfferMatch.objects.filter(property_id=prop_id)
        .order_by("rank")
        .values_list("product_id", "rank", "benefit_kind", "benefit", "score", "amount")
    )


def test_refresh__large_batch__stores_what_the_finance_rules_compute(staging):
    homes = _homes(staging)
    run = refresh_start(environment=staging, enqueue=False)
    with CaptureQueriesContext(connection) as ctx:
        run = refresh_run(environment=staging, run=run)
    assert (run.status, run.processed, run.valued) == ("done", HOMES, HOMES)
    if connection.vendor == "postgresql":  # the batch went through COPY and temporary tables
        assert any("RETURNING property_id, product_id" in q["sql"] for q in ctx.captured_queries)

    # Every figure and match equals what the pure rules give for the stored value and liens.
    recomputer = Recomputer(staging, today=run.as_of)
    liens = lien_terms_by_property([h.pk for h in homes])
    for prop in Property.objects.filter(pk__in=[h.pk for h in homes]).select_related("member"):
        stored = (prop.lien_balance, prop.equity, prop.ltv, prop.cltv, prop.borrowing_power)
        expected = recomputer.compute(prop, liens.get(prop.pk, []))
        assert stored == (prop.lien_balance, prop.equity, prop.ltv, prop.cltv, prop.borrowing_power)
        assert prop.valued_on == run.as_of
        valuation = Valuation.objects.get(property=prop, as_of=run.as_of)
        assert (valuation.value, valuation.low, valuation.high) == (
            prop.value,
            prop.value_low,
            prop.value_high,
        )
        want = [
            (m.product_id, rank, m.benefit_kind, m.benefit, m.score, m.amount)
            for rank, m in enumerate(expected, start=1)
        ]
        assert _stored_matches(prop.pk) == (want if prop.member_id else [])
    assert OfferMatch.objects.count() > HOMES  # several offers per home on average


def test_refresh__events__new_matches_and_value_changes_once(staging):
    homes = _homes(staging)
    refresh_run(environment=staging, run=refresh_start(environment=staging, enqueue=False))
    matched = Event.objects.filter(name="offer_matched")
    assert matched.count() == OfferMatch.objects.count()
    assert set(matched.values_list("member_id", "properties__offer_id")) == set(
        OfferMatch.objects.values_list("member_id", "product_id")
    )
    changed = Event.objects.get(name="home_value_changed")
    assert changed.member_id == homes[2].member_id
    assert changed.properties["property_id"] == homes[2].pk
    # Nothing new the second time: same values, same matches.
    before = Event.objects.count()
    refresh_run(environment=staging, run=refresh_start(environment=staging, enqueue=False))
    assert Event.objects.count() == before
    assert Valuation.objects.filter(property=homes[0]).count() == 1  # the same day replaced


def test_refresh__chunks__each_resumes_and_run_closes_when_all_are_done(staging):
    home_settings_factory(staging, provider_order=["mock"])
    homes = [PropertyFactory(environment=staging) for _ in range(7)]
    run = refresh_start(environment=staging, enqueue=False, chunk_size=3)
    chunks = list(run.chunks.order_by("after_id"))
    assert [(c.after_id, c.last_id) for c in chunks] == [
        (0, homes[2].pk),
        (homes[2].pk, homes[5].pk),
        (homes[5].pk, homes[6].pk),
    ]
    # A worker finishes the middle chunk first: progress counts it, the run is not done,
    # and nothing below the first chunk's cursor is known to be done yet.
    refresh_chunk_run(environment=staging, run_id=run.pk, chunk_id=chunks[1].pk)
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued, run.cursor) == ("pending", 3, 3, 0)
    assert run.percent == 42
    refresh_run(environment=staging, run=run)
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued, run.cursor) == ("done", 7, 7, homes[6].pk)
    assert set(RefreshChunk.objects.values_list("status", flat=True)) == {"done"}
    assert Valuation.objects.count() == 7


def test_refresh__values_dated_with_the_institutions_date__not_utcs(db):
    """What members see "as of" is the institution's day, also in the hours when UTC's
    date is already the next day or still the day before."""
    env = make_tenant(time_zone=zone_off_utc_date()).staging
    today = institution_today(env)
    assert today != timezone.now().date()
    with environment_scope(env):
        home_settings_factory(env, provider_order=["mock"])
        prop = PropertyFactory(environment=env)
        run = refresh_run(environment=env, run=refresh_start(environment=env, enqueue=False))
        prop.refresh_from_db()
        assert (run.status, run.as_of, prop.valued_on) == ("done", today, today)
        assert list(Valuation.objects.values_list("as_of", flat=True)) == [today]


def _started_days_ago(environment, days: int) -> RefreshRun:
    """A run started `days` ago whose worker died before its first batch."""
    run = refresh_start(environment=environment, enqueue=False)
    with pytest.raises(RefreshStopped):
        refresh_run(environment=environment, run=run, stop_after=0)
    started = institution_today(environment) - datetime.timedelta(days=days)
    RefreshRun.objects.filter(pk=run.pk).update(as_of=started)
    run.refresh_from_db()
    return run


def test_refresh_resume__run_started_yesterday__keeps_the_newer_value_a_home_got_today(scoped):
    """A run interrupted yesterday and resumed today must not replace a home's value of
    today (a vendor upload revalued it this morning) with an older one: the member's value
    went back to last month's and its date moved backwards."""
    env = scoped
    home_settings_factory(env, provider_order=["vendor"])
    today = institution_today(env)
    prop = PropertyFactory(environment=env)
    VendorValueFactory(
        environment=env, property=prop, value=D(300000), as_of=today - datetime.timedelta(days=30)
    )
    run = _started_days_ago(env, 1)
    # This morning: the vendor's value of today is uploaded and the home revalued with it.
    csv = f"property,value,fsd,as_of\n{prop.external_id},350000,0.05,{today}\n"
    vendor_values_import(environment=env, rows=parse_vendor_csv(csv), vendor="acme")
    prop.refresh_from_db()
    assert (prop.value, prop.valued_on) == (D(350000), today)

    refresh_run(environment=env, run=run)  # staff resume the interrupted run

    prop.refresh_from_db()
    assert (prop.value, prop.valued_on) == (D(350000), today), (
        f"the resumed run set the home to {prop.value} as of {prop.valued_on}"
    )


@pytest.mark.parametrize("where", ["here", "worker"])
def test_refresh_resume__run_started_weeks_ago__values_and_amortizes_as_of_today(staging, where):
    """The batches of a run resumed today are valued today, with today's balances: valued
    as of the day the run started, a home's value was dated weeks back, and its balances
    amortized to then though stored as computed now."""
    home_settings_factory(staging, provider_order=["mock"])
    prop = PropertyFactory(environment=staging)
    lien = LienFactory(environment=staging, property=prop, balance_as_of=datetime.date(2020, 1, 15))
    today = institution_today(staging)
    run = _started_days_ago(staging, 40)
    if where == "here":
        refresh_run(environment=staging, run=run)
    else:
        for chunk_id in run.chunks.values_list("pk", flat=True):
            refresh_chunk_run(environment=staging, run_id=run.pk, chunk_id=chunk_id)
    run.refresh_from_db()
    prop.refresh_from_db()
    assert (run.status, run.valued) == ("done", 1)
    assert prop.valued_on == today
    assert list(Valuation.objects.values_list("as_of", flat=True)) == [today]
    liens = lien_terms_by_property([prop.pk])[prop.pk]
    now, then = Property.objects.get(pk=prop.pk), Property.objects.get(pk=prop.pk)
    Recomputer(staging, today=today).compute(now, liens)
    Recomputer(staging, today=run.as_of).compute(then, liens)
    assert now.lien_balance < then.lien_balance < lien.balance  # a payment or more since
    assert (prop.lien_balance, prop.equity) == (now.lien_balance, now.equity)


def test_refresh_waiting__interrupted__resumes_with_only_the_homes_still_waiting(staging):
    home_settings_factory(staging, provider_order=["mock"])
    homes = [PropertyFactory(environment=staging) for _ in range(6)]
    waiting = homes[::2]
    run = refresh_waiting_start(
        environment=staging,
        property_ids=[h.pk for h in waiting],
        reason="test",
        enqueue=False,
        chunk_size=2,
    )
    assert (run.scope, run.total, run.chunks.count()) == ("waiting", 3, 2)
    with pytest.raises(RefreshStopped):
        refresh_run(environment=staging, run=run, batch_size=1, stop_after=1)
    run.refresh_from_db()
    assert (run.status, run.processed) == ("failed", 1)
    assert "RefreshStopped" in run.error  # shown in the admin, where staff resume it
    refresh_run(environment=staging, run=run, batch_size=1)
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued) == ("done", 3, 3)
    assert set(Valuation.objects.values_list("property_id", flat=True)) == {h.pk for h in waiting}
    assert not Property.objects.filter(valuation_requested_at__isnull=False).exists()


def test_refresh__run_made_before_chunks__continues_after_its_cursor(staging):
    home_settings_factory(staging, provider_order=["mock"])
    homes = [PropertyFactory(environment=staging) for _ in range(4)]
    run = RefreshRun.objects.create(
        environment=staging,
        as_of=institution_today(staging),
        total=4,
        processed=2,
        cursor=homes[1].pk,
    )
    refresh_run(environment=staging, run=run)
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued) == ("done", 4, 2)
    assert set(Valuation.objects.values_list("property_id", flat=True)) == {
        homes[2].pk,
        homes[3].pk,
    }


@pytest.mark.redis
@pytest.mark.slow
def test_refresh__queued__two_worker_processes_take_the_chunks(transactional_db, tenant):
    require_redis()  # the suite's Redis must be there; the workers use a server of their own
    env = tenant.staging  # valued by the mock provider, which answers in staging only
    homes = _homes(env, n=40)
    with environment_scope(env):
        run = refresh_start(environment=env, enqueue=False, chunk_size=5)
    server = PrivateRedis().start()
    worker = Worker(server.url, concurrency=2).start()
    try:
        worker.send_task("homes.refresh_valuations", args=[env.pk, run.pk])

        def done():
            with scopes_disabled():
                run.refresh_from_db()
            assert run.status != "failed", run.error
            return run.status == "done"

        wait_until(done, timeout=120, interval=0.5)
    finally:
        worker.stop()
        server.stop()
    assert (run.processed, run.valued) == (40, 40), worker.output()
    with environment_scope(env):
        assert run.chunks.count() == 8
        assert set(run.chunks.values_list("status", flat=True)) == {"done"}
        assert Valuation.objects.filter(property__in=homes).count() == 40
        assert Event.objects.filter(name="offer_matched").count() == OfferMatch.objects.count()


@pytest.mark.postgres
def test_batch_store__two_batches_of_other_fields_in_one_transaction__both_written(staging):
    """COPY stages rows in a temporary table that lives until commit: a second batch in the
    same transaction that writes other fields (a recompute, then a revaluation) must get a
    table of its own shape, not the first one's."""
    from django.db import transaction

    from homes.services.store import batch_store

    require_postgres()
    homes = _homes(staging)
    with environment_scope(staging), transaction.atomic():
        rows = list(Property.objects.filter(pk__in=[h.pk for h in homes]).order_by("pk"))
        for row in rows:
            row.lien_balance = D(1)
        batch_store(
            environment=staging, rows=rows, fields=["lien_balance"], valuations=[], matches=[]
        )
        for row in rows:
            row.lien_balance, row.equity = D(3), D(2)
        batch_store(
            environment=staging,
            rows=rows,
            fields=["equity", "lien_balance"],
            valuations=[],
            matches=[],
        )
    with environment_scope(staging):
        stored = set(Property.objects.values_list("lien_balance", "equity"))
    assert stored == {(D(3), D(2))}
