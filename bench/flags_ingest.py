"""Event ingestion with data-plan validation on PostgreSQL, beside a plain bulk insert.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chimney python -m bench.flags_ingest

Batches of 1,000 API events (members looked up, properties validated against the JSON
Schemas of the data plan, per-row results) through `events_ingest`, beside
`bulk_create` of the same rows already built, in the same run. Target: >= 5,000 events/s.
"""

from __future__ import annotations

import argparse
import random
import time

from bench._django import configure, figure_class, show, test_database

TARGET_EVENTS_PER_SECOND = 5000


def _batches(members, count: int, size: int) -> list[list[dict]]:
    rng = random.Random(42)
    kinds = ["heloc", "home_equity_loan", "cash_out_refi", "rate_term_refi", "pmi_removal"]
    names = ["offer_viewed", "offer_saved", "offer_selected"]
    batches = []
    for _ in range(count):
        batch = []
        for _ in range(size):
            member = rng.choice(members)
            batch.append(
                {
                    "name": rng.choice(names),
                    "member_external_id": member.external_id,
                    "properties": {"offer_id": rng.randint(1, 40), "offer_kind": rng.choice(kinds)},
                }
            )
        batches.append(batch)
    return batches


def measure(batches: int = 20, size: int = 1000) -> dict:
    from django.db import connection
    from django.utils import timezone

    from flags.defaults import demo_plan_points
    from flags.models import Event
    from flags.services.events import events_ingest
    from flags.services.plans import data_plan_version_create
    from institutions.tenancy import environment_scope
    from tests.conftest import make_tenant
    from tests.factories import MemberFactory

    tenant = make_tenant()
    env = tenant.production
    members = [MemberFactory(environment=env, is_test=i % 10 == 0) for i in range(200)]
    work = _batches(members, batches, size)
    by_ext = {m.external_id: m for m in members}
    with environment_scope(env):
        data_plan_version_create(environment=env, points=demo_plan_points(), actor=None)
        events_ingest(environment=env, events=work[0][:50])  # warm: plan cache and validators
        started = time.perf_counter()
        for batch in work:
            result = events_ingest(environment=env, events=batch, source="api")
            assert result.accepted == len(batch), result.rejected[:1]
        validated = batches * size / (time.perf_counter() - started)
        now = timezone.now()
        plain_rows = [
            [
                Event(
                    environment=env,
                    name=row["name"],
                    member_id=by_ext[row["member_external_id"]].pk,
                    is_test=by_ext[row["member_external_id"]].is_test,
                    properties=row["properties"],
                    occurred_at=now,
                    received_at=now,
                    source="api",
                    plan_status="planned",
                )
                for row in batch
            ]
            for batch in work
        ]
        started = time.perf_counter()
        for rows in plain_rows:
            Event.objects.bulk_create(rows, batch_size=500)
        plain = batches * size / (time.perf_counter() - started)
    return {"validated": validated, "plain": plain, "database": connection.vendor}


def figures(result: dict) -> list:
    Figure = figure_class()
    return [
        Figure(
            f"event ingestion with data plan ({result['database']})",
            result["validated"],
            "events/s",
            "plain bulk insert of the same rows",
            result["plain"],
            target_value=TARGET_EVENTS_PER_SECOND,
        )
    ]


def run(ctx) -> list:
    with test_database():
        return figures(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    with test_database():
        result = measure(args.batches)
    show(figures(result))
    met = result["validated"] >= TARGET_EVENTS_PER_SECOND
    print(
        f"target >= {TARGET_EVENTS_PER_SECOND:,} events/s with validation: "
        f"{'MET' if met else 'NOT MET'}"
        + ("" if result["database"] == "postgresql" else " (measured on SQLite: set DATABASE_URL)")
    )


if __name__ == "__main__":
    configure()
    main()
