"""Release snapshot and diff of 1,000 configuration rows, beside `dumpdata` of the same rows.

Staging and production each hold 500 gadgets and 500 parts (foreign keys and m2m between
them, a few sealed secrets); production differs in one row of ten. The figure is the time
to snapshot both environments, hash them and diff them; the baseline is `dumpdata` of the
same 2,000 rows in the same run. Target: at most twice the dumpdata time.

Runs in `python -m bench` or alone: `python -m bench.releases_snapshot`.
"""

from __future__ import annotations

import io
import statistics
import time

from bench.harness import Context, Figure

ROWS_PER_MODEL = 500
REPEATS = 7


def _setup():
    from django.db import connection
    from django_scopes import scopes_disabled

    from institutions import promotion
    from institutions.models import Institution
    from institutions.services import institution_create
    from tests.releases import models as test_models

    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if test_models.Gadget._meta.db_table not in tables:
        test_models.create_tables(connection)
    test_models.register(promotion)
    with scopes_disabled():
        Institution.objects.filter(slug="bench-releases").delete()
    institution = institution_create(
        slug="bench-releases", display_name="Bench Releases CU", legal_name="Bench Releases CU"
    )
    staging = institution.environments.get(kind="staging")
    production = institution.environments.get(kind="production")
    for environment, drift in ((staging, 0), (production, 1)):
        gadgets = test_models.Gadget.objects.bulk_create(
            test_models.Gadget(
                environment=environment,
                name=f"gadget-{i:04d}",
                price=f"{i % 97}.{i % 100:02d}",
                enabled=bool(i % 3),
                colour="red" if i % 2 else "blue",
                settings={"tier": i % 5, "limits": [i, i * 2]},
                api_secret=f"secret-{i}" if i % 50 == 0 else "",
            )
            for i in range(ROWS_PER_MODEL)
        )
        for gadget in gadgets:
            if drift and int(gadget.name[-4:]) % 10 == 0:
                gadget.price = "1.00"
                gadget.save(update_fields=["price"])
        parts = test_models.Part.objects.bulk_create(
            test_models.Part(
                environment=environment,
                gadget=gadgets[i],
                code=f"P{i}",
                label=f"Part {i}" + (" (old)" if drift and i % 10 == 5 else ""),
            )
            for i in range(ROWS_PER_MODEL)
        )
        through = test_models.Part.works_with.through
        through.objects.bulk_create(
            through(part_id=parts[i].pk, gadget_id=gadgets[(i + 1) % ROWS_PER_MODEL].pk)
            for i in range(0, ROWS_PER_MODEL, 5)
        )
    return staging, production


def _time(fn) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def run(ctx: Context) -> list[Figure]:
    from django.core.management import call_command

    from releases.diff import diff_snapshots
    from releases.snapshot import capture, snapshot_hash

    staging, production = _setup()

    def snapshot_and_diff():
        after, before = capture(staging), capture(production)
        snapshot_hash(after), snapshot_hash(before)
        entries = diff_snapshots(before, after)
        assert len(entries) == ROWS_PER_MODEL // 10 * 2, len(entries)

    def dumpdata():
        call_command("dumpdata", "releases.Gadget", "releases.Part", stdout=io.StringIO())

    snapshot_and_diff(), dumpdata()  # warm up imports and connections
    dump_ms = _time(dumpdata)
    snapshot_ms = _time(snapshot_and_diff)

    # The same comparison without the m2m rows, where dumpdata needs no query per row:
    # the harder baseline, reported beside the target figure.
    from institutions import promotion

    registry = dict(promotion._registry)
    promotion._registry.pop("releases.Part")
    try:
        gadgets_ms = _time(lambda: diff_snapshots(capture(production), capture(staging)))
    finally:
        promotion._registry.clear()
        promotion._registry.update(registry)
    gadgets_dump_ms = _time(
        lambda: call_command("dumpdata", "releases.Gadget", stdout=io.StringIO())
    )
    return [
        Figure(
            "release snapshot + diff (2 x 1,000 rows)",
            snapshot_ms,
            "ms",
            "dumpdata of the same rows",
            dump_ms,
            target_ratio=2.0,
            higher_is_better=False,
        ),
        Figure(
            "release snapshot + diff, gadgets only (2 x 500)",
            gadgets_ms,
            "ms",
            "dumpdata of the same gadget rows",
            gadgets_dump_ms,
            target_ratio=None,
            higher_is_better=False,
        ),
    ]


if __name__ == "__main__":
    context = Context()
    context.prepare_database()
    context.setup_django()
    for figure in run(context):
        print(figure.line())
