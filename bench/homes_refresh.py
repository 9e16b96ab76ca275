"""Revaluation + equity + offer matching of many properties, beside a plain bulk insert.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chimney_bench \
        python -m bench.homes_refresh [--properties 100000]

Builds a throwaway institution (recorded sales from the King County CSV, N properties drawn
from it, each with a first mortgage, four offer products), times a full refresh run
(comparable-sales provider, equity, matching; batched writes) and, in the same run, a plain
bulk insert of the same property rows. The institution is deleted afterwards.
Target: ≥ 2,000 properties/s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings")
os.environ.setdefault("DEBUG", "1")

TARGET = 2000.0


def _setup():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _properties(environment, comparables, n, rng):
    from decimal import Decimal

    from homes.models import Property

    rows = []
    for i in range(n):
        c = comparables[rng.randrange(len(comparables))]
        rows.append(
            Property(
                environment=environment,
                external_id=f"B{i}",
                street=f"{i} Bench St",
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
            )
        )
    return rows


def measure(n: int) -> dict:
    import datetime
    from decimal import Decimal

    from django.utils import timezone

    from homes.demo_homes import PRODUCTS, _load_sales, sales_csv_path
    from homes.models import HomeSettings, Lien, Member, OfferProduct, Property, RefreshRun
    from homes.services.valuations import refresh_run, refresh_start
    from homes.valuation.estimator import load_king_county_csv
    from homes.valuation.providers import sales_estimator
    from institutions.services import institution_create
    from institutions.tenancy import environment_scope

    comparables = load_king_county_csv(sales_csv_path())
    rng = random.Random(1)
    institution = institution_create(
        slug=f"bench-{uuid.uuid4().hex[:8]}", display_name="Bench", legal_name="Bench"
    )
    env = institution.environments.get(kind="production")
    baseline_env = institution.environments.get(kind="staging")
    try:
        with environment_scope(baseline_env):
            rows = _properties(baseline_env, comparables, n, rng)
            start = time.perf_counter()
            Property.objects.bulk_create(rows, batch_size=2000)
            baseline = n / (time.perf_counter() - start)
        with environment_scope(env):
            HomeSettings.objects.create(environment=env, provider_order=["comparable", "mock"])
            _load_sales(env, comparables)
            for spec in PRODUCTS:
                OfferProduct.objects.create(environment=env, **spec)
            members = Member.objects.bulk_create(
                [Member(environment=env, external_id=f"M{i}") for i in range(n)], batch_size=5000
            )
            props = _properties(env, comparables, n, rng)
            for prop, member in zip(props, members, strict=True):
                prop.member = member
            Property.objects.bulk_create(props, batch_size=2000)
            today = timezone.localdate()
            Lien.objects.bulk_create(
                [
                    Lien(
                        environment=env,
                        property=p,
                        position=1,
                        original_amount=Decimal(300000),
                        rate=Decimal("6.5"),
                        term_months=360,
                        origination_date=today - datetime.timedelta(days=3 * 365),
                        balance=Decimal(290000),
                        balance_as_of=today - datetime.timedelta(days=400),
                        pmi_monthly=Decimal(90),
                    )
                    for p in props
                ],
                batch_size=2000,
            )
            start = time.perf_counter()
            estimator = sales_estimator(env)
            build = time.perf_counter() - start
            run = refresh_start(environment=env, enqueue=False)
            start = time.perf_counter()
            run = refresh_run(environment=env, run=run, estimator=estimator)
            elapsed = time.perf_counter() - start
            assert run.status == RefreshRun.Status.DONE
            assert run.processed == n
    finally:
        with environment_scope(env):
            Property.objects.filter(environment=env).delete()
        institution.delete()
    return {
        "rate": n / elapsed,
        "rate_with_build": n / (elapsed + build),
        "baseline": baseline,
        "build_s": build,
        "valued": run.valued,
    }


def run(ctx):
    """The common benchmark interface (bench/__main__.py)."""
    from bench import Figure

    result = measure(int(os.environ.get("BENCH_PROPERTIES", "100000")))
    return [
        Figure(
            "homes refresh (revalue + equity + match)",
            result["rate"],
            "properties/s",
            "bulk_insert",
            ctx.baseline("bulk_insert") if hasattr(ctx, "baseline") else result["baseline"],
            TARGET,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--properties", type=int, default=100_000)
    args = parser.parse_args()
    _setup()
    r = measure(args.properties)
    print(f"properties:            {args.properties:,} (valued {r['valued']:,})")
    print(f"estimator build:       {r['build_s']:.1f} s (once per set of sales)")
    print(f"refresh:               {r['rate']:,.0f} properties/s (target ≥ {TARGET:,.0f})")
    print(f"  including the build: {r['rate_with_build']:,.0f} properties/s")
    ratio = r["rate"] / r["baseline"]
    print(f"bulk insert baseline:  {r['baseline']:,.0f} rows/s (ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
