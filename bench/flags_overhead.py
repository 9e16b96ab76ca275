"""Flag evaluation overhead: a member page evaluating ten flags beside the same page with none.

    python -m bench.flags_overhead [--requests 300] [--rounds 7]

Same process, same run, same page template (tests/flags/pages.py), the cache warm as in
production; rounds alternate so that drift hits both sides. Target: overhead <= 10%.
Also prints the per-request cost of recording request metrics.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench._django import configure, figure_class, show, test_database

TARGET_OVERHEAD = 0.10


def _timed(client, path: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    return n / (time.perf_counter() - started)


def measure(requests: int = 300, rounds: int = 7) -> dict:
    from django.conf import settings
    from django.core.cache import cache

    from flags import request_metrics
    from institutions.tenancy import environment_scope
    from tests.conftest import make_tenant, member_client
    from tests.factories import MemberFactory
    from tests.flags.factories import FlagFactory

    settings.TENANT_URLCONF = "tests.flags.pages"
    settings.DEBUG = False
    settings.FLAGS_METRICS_FLUSH_SECONDS = 5.0  # the production default (tests flush each time)
    cache.clear()
    tenant = make_tenant()
    env = tenant.production
    with environment_scope(env):
        for i in range(10):
            FlagFactory(environment=env, name=f"bench_flag_{i}", percent=50, test_cohort=i < 3)
    member = MemberFactory(environment=env, is_test=True)
    client = member_client(member)
    for path in ("/flagged/?n=0", "/flagged/?n=10"):  # warm caches and impressions of the day
        _timed(client, path, 20)
    bare, flagged = [], []
    for _ in range(rounds):
        bare.append(_timed(client, "/flagged/?n=0", requests))
        flagged.append(_timed(client, "/flagged/?n=10", requests))
    # The cost of one request_metrics.record() call (the middleware's whole per-request work).
    n = 50_000
    started = time.perf_counter()
    for i in range(n):
        request_metrics.record(env.pk, "member", 200, float(i % 300))
    record_us = (time.perf_counter() - started) / n * 1e6
    request_metrics._buffer.clear()
    return {
        "bare": statistics.median(bare),
        "flagged": statistics.median(flagged),
        "record_us": record_us,
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
    }


def figures(result: dict) -> list:
    Figure = figure_class()
    return [
        Figure(
            f"member page, 10 flags ({result['cache']}, {result['database']})",
            result["flagged"],
            "pages/s",
            "same page, no flags",
            result["bare"],
            1 / (1 + TARGET_OVERHEAD),
        )
    ]


def run(ctx) -> list:
    with test_database():
        return figures(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with test_database():
        result = measure(args.requests, args.rounds)
    show(figures(result))
    overhead = result["bare"] / result["flagged"] - 1
    print(
        f"overhead per page: {overhead:.1%} (target <= {TARGET_OVERHEAD:.0%}): "
        f"{'MET' if overhead <= TARGET_OVERHEAD else 'NOT MET'}"
    )
    print(
        f"request metrics recording: {result['record_us']:.2f} µs per request (in-process "
        "buffer; one upsert per environment, minute and cohort every few seconds)"
    )


if __name__ == "__main__":
    configure()
    main()
