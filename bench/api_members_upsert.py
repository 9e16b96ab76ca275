"""Bulk upsert of members through the API on PostgreSQL, beside a plain bulk insert.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chimney python -m bench.api_members_upsert

Batches of 1,000 members, each with one home and one first mortgage, POSTed to
/api/v1/members/ through the whole Django stack in this process (middleware, API key,
throttle, Idempotency-Key, validation, the `member_bulk_upsert` service, the JSON answer):
first as new members, then again as updates of every member. Beside it, in the same run,
`bulk_create` of the same member, home and lien rows already built as model objects.
Target: >= 2,000 members/s for the new members.

The homes' valuation and the equity and offers recomputed after a sync run in the
background (a Celery task queued on commit); the benchmark queues nothing, runs that
work after the timed requests and prints its rate apart, for information.
"""

from __future__ import annotations

import argparse
import json
import time

from bench._django import configure, figure_class, show, test_database

TARGET_MEMBERS_PER_SECOND = 2000
BATCH = 1000


def _rows(start: int, count: int, prefix: str) -> list[dict]:
    from tests.api.helpers import member_row

    return [member_row(n, prefix=prefix) for n in range(start, start + count)]


def measure(batches: int = 10) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from homes import tasks
    from homes.models import Lien, Member, Property
    from homes.services.sync import properties_refresh
    from institutions.tenancy import environment_scope
    from tests.conftest import make_tenant
    from tests.institutions.factories import api_key_with_secret

    tenant = make_tenant()
    env = tenant.production
    _, raw_key = api_key_with_secret(env, scopes=["members:write"])
    client = Client(HTTP_HOST=env.host, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    queued: list[tuple[list[int], list[int]]] = []
    cpu_used: dict[str, float] = {}

    class Recorder:
        @staticmethod
        def delay(environment_id, revalue, recompute):
            queued.append((revalue, recompute))

    work = [json.dumps({"members": _rows(i * BATCH, BATCH, "B")}) for i in range(batches)]

    def post_all(tag: str) -> float:
        started, cpu = time.perf_counter(), time.process_time()
        for i, body in enumerate(work):
            response = client.post(
                "/api/v1/members/",
                body,
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"{tag}-{i}",
            )
            assert response.status_code == 200, response.content[:500]
        elapsed = time.perf_counter() - started
        cpu_used[tag] = time.process_time() - cpu
        return batches * BATCH / elapsed

    original = tasks.properties_sync
    tasks.properties_sync = Recorder
    try:
        with override_settings(API_THROTTLE_RATE="100000/min"):
            client.post(  # warm: imports, the key, the compiled validators
                "/api/v1/members/",
                json.dumps({"members": _rows(0, 10, "W")}),
                content_type="application/json",
            )
            created = post_all("create")
            # The same members again, each with a changed name and lien balance.
            work = [
                json.dumps(
                    {
                        "members": [
                            {
                                **row,
                                "last_name": row["last_name"] + "x",
                                "properties": [
                                    {
                                        **row["properties"][0],
                                        "liens": [
                                            {**row["properties"][0]["liens"][0], "balance": 1000}
                                        ],
                                    }
                                ],
                            }
                            for row in json.loads(body)["members"]
                        ]
                    }
                )
                for body in work
            ]
            updated = post_all("update")
    finally:
        tasks.properties_sync = original

    with environment_scope(env):
        revalue = sorted({i for r, _ in queued for i in r})
        started = time.perf_counter()
        properties_refresh(environment=env, revalue_ids=revalue, recompute_ids=[])
        refresh = len(revalue) / (time.perf_counter() - started)

        # The plain insert: the same rows, already model objects, into the same tables.
        rows = _rows(1_000_000, batches * BATCH, "P")
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            members = Member.objects.bulk_create(
                [
                    Member(
                        environment=env,
                        external_id=r["external_id"],
                        email=r["email"],
                        first_name=r["first_name"],
                        last_name=r["last_name"],
                    )
                    for r in chunk
                ]
            )
            homes = Property.objects.bulk_create(
                [
                    Property(
                        environment=env,
                        member=m,
                        **{k: v for k, v in r["properties"][0].items() if k != "liens"},
                    )
                    for m, r in zip(members, chunk, strict=True)
                ]
            )
            Lien.objects.bulk_create(
                [
                    Lien(environment=env, property=h, **r["properties"][0]["liens"][0])
                    for h, r in zip(homes, chunk, strict=True)
                ]
            )
        plain = len(rows) / (time.perf_counter() - started)
    return {
        "created": created,
        "updated": updated,
        "plain": plain,
        "refresh": refresh,
        "cpu_created": batches * BATCH / cpu_used["create"],
        "cpu_updated": batches * BATCH / cpu_used["update"],
        "database": connection.vendor,
    }


def figures(result: dict) -> list:
    Figure = figure_class()
    db = result["database"]
    return [
        Figure(
            f"API upsert, new members + home + lien ({db})",
            result["created"],
            "members/s",
            "plain bulk insert of the same rows",
            result["plain"],
            target_value=TARGET_MEMBERS_PER_SECOND,
        ),
        Figure(
            f"API upsert, changed members ({db})",
            result["updated"],
            "members/s",
            "plain bulk insert of the same rows",
            result["plain"],
            None,
        ),
        Figure(
            f"background valuation of synced homes ({db})",
            result["refresh"],
            "homes/s",
            "plain bulk insert of the same rows",
            result["plain"],
            None,
        ),
    ]


def run(ctx) -> list:
    with test_database():
        result = measure()
    _verdict(result)
    return figures(result)


def _verdict(result: dict) -> None:
    met = result["created"] >= TARGET_MEMBERS_PER_SECOND
    print(
        f"target >= {TARGET_MEMBERS_PER_SECOND:,} members/s through the API: "
        f"{'MET' if met else 'NOT MET'} ({result['created']:,.0f} new, "
        f"{result['updated']:,.0f} changed; this process's CPU time alone would allow "
        f"{result['cpu_created']:,.0f} and {result['cpu_updated']:,.0f})"
        + ("" if result["database"] == "postgresql" else " (measured on SQLite: set DATABASE_URL)")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    with test_database():
        result = measure(args.batches)
    show(figures(result))
    _verdict(result)


if __name__ == "__main__":
    configure()
    main()
