"""Fitted estimators on disk: one process fits, the others (and restarts) read it."""

from __future__ import annotations

import datetime
import threading
import time
from decimal import Decimal as D

import pytest

from homes.models import Sale
from homes.valuation import providers, store
from homes.valuation.estimator import Comparable, ComparableSalesEstimator, Subject

SUBJECT = Subject(lat=47.66, lon=-122.34, living_sqft=1800, year_built=1980, lot_sqft=5000)


def small_sales(n=40) -> list[Comparable]:
    return [
        Comparable(
            id=i,
            price=D(300_000 + 1_000 * i),
            lat=47.66 + (i % 7) * 0.002,
            lon=-122.34 + (i % 5) * 0.002,
            living_sqft=1_500 + 20 * i,
            year_built=1950 + i,
            lot_sqft=5_000,
            sale_date=datetime.date(2026, 1, 1) + datetime.timedelta(days=i),
        )
        for i in range(n)
    ]


def counting_build(calls: list, delay: float = 0.0):
    def build():
        calls.append(threading.get_ident())
        time.sleep(delay)
        return ComparableSalesEstimator(small_sales(), learned=False)

    return build


def test_load_or_build__second_process_reads_what_the_first_fitted(tmp_path):
    calls = []
    first = store.load_or_build(tmp_path, "abc", counting_build(calls))
    again = store.load_or_build(tmp_path, "abc", counting_build(calls))
    assert len(calls) == 1
    assert again is not first  # read back from the file, not this process's object
    assert first.estimate(SUBJECT) is not None
    assert again.estimate(SUBJECT) == first.estimate(SUBJECT)
    assert [p.name for p in tmp_path.glob("*.estimator")] == [store.path_for(tmp_path, "abc").name]


def test_load_or_build__concurrent_callers__one_fits_the_others_wait_and_read(tmp_path):
    calls, results = [], []
    build = counting_build(calls, delay=0.5)
    threads = [
        threading.Thread(target=lambda: results.append(store.load_or_build(tmp_path, "k", build)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({r.estimate(SUBJECT) for r in results}) == 1


def test_load_or_build__unreadable_file__fitted_again_and_replaced(tmp_path):
    path = store.path_for(tmp_path, "bad")
    path.write_bytes(b"not a pickle")
    calls = []
    built = store.load_or_build(tmp_path, "bad", counting_build(calls))
    assert len(calls) == 1
    assert isinstance(built, ComparableSalesEstimator)
    assert store.load_or_build(tmp_path, "bad", counting_build(calls)).estimate(SUBJECT)
    assert len(calls) == 1  # the replaced file is good


def test_load_or_build__directory_not_writable__fits_in_this_process(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    calls = []
    built = store.load_or_build(blocked / "estimators", "x", counting_build(calls))
    assert isinstance(built, ComparableSalesEstimator)
    assert len(calls) == 1


def test_load_or_build__keeps_only_the_most_recently_used(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "KEEP", 2)
    calls = []
    for key in ("one", "two", "three"):
        store.load_or_build(tmp_path, key, counting_build(calls))
        time.sleep(0.01)
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.estimator")) == ["three", "two"]


@pytest.mark.django_db
def test_sales_estimator__a_restarted_process_reads_the_stored_estimator(
    scoped, settings, tmp_path, monkeypatch
):
    settings.HOMES_ESTIMATOR_DIR = str(tmp_path)
    Sale.objects.bulk_create(
        Sale(
            environment=scoped,
            external_id=f"S{c.id}",
            price=c.price,
            latitude=c.lat,
            longitude=c.lon,
            living_sqft=c.living_sqft,
            year_built=c.year_built,
            lot_sqft=c.lot_sqft,
            sale_date=c.sale_date,
        )
        for c in small_sales()
    )
    built = []
    real = providers.ComparableSalesEstimator

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(providers, "ComparableSalesEstimator", counting)
    providers._estimators.clear()
    first = providers.sales_estimator(scoped)
    providers._estimators.clear()  # as a new process starts with nothing in memory
    second = providers.sales_estimator(scoped)
    assert len(built) == 1
    assert second is not first
    assert first.estimate(SUBJECT) is not None
    assert second.estimate(SUBJECT) == first.estimate(SUBJECT)
    assert len(list(tmp_path.glob("*.estimator"))) == 1
