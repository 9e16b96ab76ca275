"""Revaluation + equity + offer matching of 100,000 properties, beside a plain bulk insert.

    python -m bench homes_refresh            (BENCH_PROPERTIES=100000 by default)

Builds a throwaway institution in the benchmark database: the recorded sales of the King
County CSV; N members (2% in the test cohort), each with a home drawn from the sales, a
first mortgage (PMI where the down payment was small; one home in eleven owned outright)
and for one in five a HELOC or second mortgage; the four demo offer products; an active
journey that members enter when an offer matches them. Then it times a full refresh run
as production runs it: `refresh_start` queues the run, two Celery worker processes take
its chunks in parallel (comparable-sales valuation, equity, matching; valuations, figures
and matches written in batches; home_value_changed and offer_matched events recorded in
bulk), and the run is over when its status is done.

Beside it, measured in the same run: a plain bulk insert of the same property rows
(Django bulk_create). Target: ≥ 2,000 properties/s.

The comparable-sales estimator is fitted once per set of recorded sales (seconds) by the
first process that needs it and read by the others from HOMES_ESTIMATOR_DIR
(homes.valuation.store); a warm-up run of another institution with the same sales gets it
ready before the clock starts, and its time is printed separately (a fit, or only reads
when an earlier run left the fitted estimator there).
"""

from __future__ import annotations

import datetime
import os
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TARGET = 2000.0  # properties per second
WORKERS = 2
RATES = ["2.875", "3.250", "4.125", "5.500", "6.500", "7.250"]


def _property_rows(environment, comparables, n, rng, members=None):
    from homes.models import Property

    rows = []
    for i in range(n):
        c = comparables[rng.randrange(len(comparables))]
        rows.append(
            Property(
                environment=environment,
                member=members[i] if members else None,
                external_id=f"B{i}",
                street=f"{i} Bench St",
                city="Seattle",
                state="WA",
                postal_code=c.zipcode or "",
                latitude=c.lat + rng.uniform(-0.002, 0.002),
                longitude=c.lon + rng.uniform(-0.002, 0.002),
                living_sqft=c.living_sqft,
                lot_sqft=c.lot_sqft,
                bedrooms=c.bedrooms,
                bathrooms=Decimal(str(c.bathrooms)),
                year_built=c.year_built,
                grade=c.grade,
                condition=c.condition,
                owner_occupied=i % 10 != 9,
                purchase_price=(c.price * Decimal("0.75")).quantize(Decimal(1)),
            )
        )
    return rows


def _balance(amount: float, rate_pct: float, months: int, paid: int) -> Decimal:
    """The scheduled balance after `paid` payments (closed form; good enough for data)."""
    r = rate_pct / 1200
    growth = (1 + r) ** paid
    payment = amount * r / (1 - (1 + r) ** -months)
    return Decimal(max(amount * growth - payment * (growth - 1) / r, 0)).quantize(Decimal("0.01"))


def _liens(environment, props, rng, today):
    from homes.models import Lien

    liens = []
    for i, prop in enumerate(props):
        if i % 11 == 10:
            continue  # owned outright
        years = rng.randint(1, 15)
        start = today - datetime.timedelta(days=365 * years + rng.randint(0, 300))
        known = today - datetime.timedelta(days=rng.randint(20, 400))
        down = rng.choice([0.05, 0.10, 0.20, 0.20, 0.25])
        amount = float(prop.purchase_price) * (1 - down)
        rate = float(rng.choice(RATES))
        term = 360 if i % 8 else 180
        paid = min((known.year - start.year) * 12 + known.month - start.month, term)
        liens.append(
            Lien(
                environment=environment,
                property=prop,
                position=1,
                kind="first_mortgage",
                original_amount=Decimal(round(amount)),
                rate=Decimal(str(rate)),
                term_months=term,
                origination_date=start,
                balance=_balance(round(amount), rate, term, paid),
                balance_as_of=known,
                pmi_monthly=Decimal(95) if down < 0.2 else Decimal(0),
            )
        )
        if i % 5 == 0:
            heloc = i % 10 == 0
            line = Decimal(rng.randint(2, 8) * 10000)
            liens.append(
                Lien(
                    environment=environment,
                    property=prop,
                    position=2,
                    kind="heloc" if heloc else "second_mortgage",
                    original_amount=line,
                    rate=Decimal("8.500") if heloc else Decimal("7.750"),
                    term_months=120 if heloc else 180,
                    origination_date=known,
                    balance=(line * Decimal("0.6")).quantize(Decimal(1)),
                    balance_as_of=known,
                )
            )
    Lien.objects.bulk_create(liens, batch_size=5000)
    return len(liens)


def _institution(name: str):
    from institutions.services import institution_create

    return institution_create(
        slug=f"{name}-{uuid.uuid4().hex[:8]}", display_name=name.title(), legal_name=name.title()
    )


def _homes_settings(environment, comparables):
    from homes.demo_homes import PRODUCTS, _load_sales
    from homes.models import HomeSettings, OfferProduct
    from notifications.models import Journey

    HomeSettings.objects.create(environment=environment, provider_order=["comparable", "vendor"])
    _load_sales(environment, comparables)
    for spec in PRODUCTS:
        OfferProduct.objects.create(environment=environment, **spec)
    Journey.objects.create(
        environment=environment,
        name="Offer follow-up",
        trigger=Journey.Trigger.OFFER_MATCHED,
        steps=[{"type": "wait", "days": 2}],
        active=True,
    )


def _run_to_end(environment, run, timeout: float = 3600.0):
    from homes.models import RefreshRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == RefreshRun.Status.DONE:
            return run
        if run.status == RefreshRun.Status.FAILED:
            raise RuntimeError(f"refresh {run.pk} failed: {run.error}")
        time.sleep(0.2)
    raise RuntimeError(f"refresh {run.pk} did not finish in {timeout:.0f} s")


def _cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU time of each of these processes so far (Linux /proc)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def _worker_pids(proc) -> list[int]:
    """The worker's pool processes (Linux /proc; empty elsewhere)."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def _database_pids() -> list[int]:
    """PostgreSQL server processes serving the benchmark database (on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def _estimator_alone(env, n: int) -> tuple[float, float]:
    """Valuing n of the homes with the estimator alone (one process, no database writes):
    homes per second of wall time and per CPU second."""
    from homes.models import Property
    from homes.services.recompute import home_rows
    from homes.valuation.providers import sales_estimator, subject_of

    ids = list(Property.objects.filter(environment=env).values_list("pk", flat=True)[:n])
    subjects = [subject_of(row) for row in home_rows(env, ids=ids)]
    estimator = sales_estimator(env)
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(0, len(subjects), 5000):
        estimator.estimate_many(subjects[i : i + 5000])
    return len(subjects) / (time.perf_counter() - start), len(subjects) / (
        time.process_time() - cpu
    )


def measure(ctx, n: int) -> dict:
    from django.utils import timezone

    from flags.models import Event
    from homes.demo_homes import sales_csv_path
    from homes.models import Member, OfferMatch, Property, Valuation
    from homes.services.refresh import refresh_start
    from homes.valuation.estimator import load_king_county_csv
    from institutions.tenancy import environment_scope

    comparables = load_king_county_csv(sales_csv_path())
    rng = random.Random(1)
    today = timezone.localdate()
    institution = _institution("bench")
    env = institution.environments.get(kind="production")
    baseline_env = institution.environments.get(kind="staging")
    with environment_scope(baseline_env):
        rows = _property_rows(baseline_env, comparables, n, random.Random(2))
        start = time.perf_counter()
        Property.objects.bulk_create(rows, batch_size=2000)
        baseline = n / (time.perf_counter() - start)
    with environment_scope(env):
        _homes_settings(env, comparables)
        members = Member.objects.bulk_create(
            [Member(environment=env, external_id=f"M{i}", is_test=i % 50 == 0) for i in range(n)],
            batch_size=5000,
        )
        props = _property_rows(env, comparables, n, rng, members)
        Property.objects.bulk_create(props, batch_size=2000)
        liens = _liens(env, props, rng, today)
    warm = _institution("warm").environments.get(kind="production")
    with environment_scope(warm):
        _homes_settings(warm, comparables)
        Property.objects.bulk_create(_property_rows(warm, comparables, 400, rng), batch_size=400)

    with ctx.celery_workers(processes=WORKERS) as worker:
        # Each worker process builds its estimator on its first chunk: many small chunks
        # keep both busy while they build.
        with environment_scope(warm):
            start = time.perf_counter()
            _run_to_end(warm, refresh_start(environment=warm, chunk_size=25))
            warm_s = time.perf_counter() - start
        with environment_scope(env):
            workers = _cpu_seconds(_worker_pids(worker))
            database = _cpu_seconds(_database_pids())
            start = time.perf_counter()
            run = _run_to_end(env, refresh_start(environment=env))
            elapsed = time.perf_counter() - start
            # Backends that served the run (one per worker process, kept open).
            cpu = (
                _cpu_used(workers, _cpu_seconds(_worker_pids(worker))),
                _cpu_used(database, _cpu_seconds(_database_pids())),
            )
            chunks = run.chunks.count()
            stored = Valuation.objects.filter(environment=env, as_of=run.as_of).count()
            matches = OfferMatch.objects.filter(environment=env).count()
            valued_homes = Property.objects.filter(environment=env, valued_on=run.as_of).count()
    with environment_scope(env):
        events = {
            name: Event.objects.filter(environment=env, name=name).count()
            for name in ("offer_matched", "home_value_changed")
        }
    assert run.processed == n, run
    assert run.valued == stored == valued_homes, (run, stored, valued_homes)
    assert matches, "no offer matched any home"
    assert events["offer_matched"] == matches, (events, matches)
    with environment_scope(env):
        alone, alone_cpu = _estimator_alone(env, min(n, 10_000))
    return {
        "rate": n / elapsed,
        "worker_cpu_ms": cpu[0] * 1000 / n,
        "database_cpu_ms": cpu[1] * 1000 / n,
        "alone": alone,
        "alone_cpu": alone_cpu,
        "elapsed": elapsed,
        "baseline": baseline,
        "warm_s": warm_s,
        "valued": run.valued,
        "liens": liens,
        "matches": matches,
        "events": events,
        "chunks": chunks,
    }


def run(ctx):
    """The common benchmark interface (bench/__main__.py)."""
    from bench import Figure

    n = int(os.environ.get("BENCH_PROPERTIES", "100000"))
    r = measure(ctx, n)
    print(
        f"  {n:,} homes, {r['liens']:,} liens: {r['elapsed']:.1f} s in {r['chunks']} chunks on "
        f"{WORKERS} workers; valued {r['valued']:,}, {r['matches']:,} matches, events "
        f"{r['events']}; estimator warm-up {r['warm_s']:.1f} s\n"
        f"  CPU per home: workers {r['worker_cpu_ms']:.3f} ms, PostgreSQL "
        f"{r['database_cpu_ms']:.3f} ms; the estimator alone (one process, no writes): "
        f"{r['alone']:,.0f} homes/s, {r['alone_cpu']:,.0f} homes per CPU second",
        flush=True,
    )
    return [
        Figure(
            f"homes refresh, {n:,} homes (revalue+equity+match)",
            r["rate"],
            "properties/s",
            "bulk_create of the same rows",
            r["baseline"],
            target_value=TARGET,
        ),
        Figure(
            f"homes refresh, {n:,} homes ({WORKERS} workers)",
            r["rate"],
            "properties/s",
            "the estimator alone (1 process)",
            r["alone"],
        ),
    ]


def main() -> None:
    from bench.harness import Context

    ctx = Context()
    ctx.prepare_database()
    ctx.setup_django()
    for figure in run(ctx):
        print(figure.line())


if __name__ == "__main__":
    main()
