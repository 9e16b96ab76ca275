"""Monthly digest throughput: 100,000 members, two Celery worker processes, Redis, PostgreSQL.

    python -m bench.notifications_digest [--members 100000] [--noop 20000]

Delivered to a fast local backend: Django's file email backend (one file per batch
connection), so the figure measures planning, rendering, MIME building and the outbox, not
a mail server. The baseline is the throughput of a no-op Celery task through the same
worker processes on the same Redis, measured in the same run. Home data comes from a
synthetic, deterministic stand-in for homes.selectors.home_summaries (this figure is about
notifications; the valuations have their own benchmark).

Needs PostgreSQL and Redis: BENCH_DATABASE_URL (default the chimney_notifications_bench
database, created if missing) and BENCH_REDIS_URL (default redis://127.0.0.1:6379/12).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chimney_notifications_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PERIOD = "2026-05"


@dataclass(frozen=True)
class Summary:
    member_id: int
    property_id: int
    address: str
    value: Decimal | None
    value_low: Decimal | None
    value_high: Decimal | None
    as_of: date | None
    previous_value: Decimal | None
    change_pct: Decimal | None
    equity: Decimal | None
    borrowing_power: Decimal | None
    top_offer_title: str | None
    top_offer_path: str | None
    member_rate: Decimal | None


def home_summaries(*, environment, member_ids) -> dict[int, Summary]:
    """Synthetic home data in the shape homes provides (deterministic per member)."""
    out = {}
    for m in member_ids:
        value = Decimal(250000 + (m * 7919) % 500000)
        out[m] = Summary(
            m,
            m,
            f"{m % 9000 + 100} Maple Avenue",
            value,
            value - 15000,
            value + 15000,
            date(2026, 5, 1),
            value - 4000,
            Decimal("1.6"),
            value / 3,
            value / 5,
            "Home equity line of credit",
            "/offers/heloc/",
            Decimal("6.5"),
        )
    return out


try:
    from bench import Figure
except ImportError:  # the shared bench runner has not landed yet

    @dataclass(frozen=True)
    class Figure:
        name: str
        value: float
        unit: str
        baseline: str
        baseline_value: float
        target_ratio: float


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _population(members: int):
    from django.db import connection
    from django_scopes import scopes_disabled

    from homes.models import Member
    from institutions.models import Institution
    from institutions.services import institution_create
    from institutions.tenancy import environment_scope

    with scopes_disabled():
        institution = Institution.objects.filter(slug="benchcu").first() or institution_create(
            slug="benchcu",
            display_name="Bench CU",
            legal_name="Bench Credit Union",
            postal_address="1 Bench Road, Springfield",
            time_zone="America/Chicago",
        )
        env = institution.environments.get(kind="production")
    with environment_scope(env):
        with connection.cursor() as cursor:  # a fresh month each run
            cursor.execute("DELETE FROM notifications_delivery WHERE environment_id = %s", [env.pk])
            cursor.execute(
                "DELETE FROM notifications_notificationprofile WHERE environment_id = %s", [env.pk]
            )
        have = Member.objects.filter(environment=env).count()
        Member.objects.bulk_create(
            [
                Member(
                    environment=env,
                    email=f"m{i}@bench.example",
                    first_name=f"M{i}",
                    external_id=f"B{i}",
                    enrollment="enrolled",
                )
                for i in range(have, members)
            ],
            batch_size=5000,
        )
        extra = list(Member.objects.filter(environment=env).order_by("pk")[members:])
        Member.objects.filter(pk__in=[m.pk for m in extra]).update(enrollment="pending")
        Member.objects.filter(environment=env).order_by("pk").filter(
            pk__in=Member.objects.filter(environment=env).order_by("pk").values("pk")[:members]
        ).update(enrollment="enrolled")
    return env


def _worker(mail_dir: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chimney.settings",
            "DEBUG": "1",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "EMAIL_URL": f"filemail:///{mail_dir}",
            "NOTIFICATIONS_HOME_SUMMARIES": "bench.notifications_digest.home_summaries",
            "NOTIFICATIONS_SEND_BATCH": "500",
            "NOTIFICATIONS_FANOUT_CHUNK": "2000",
            "LOG_LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "chimney",
            "worker",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            "celery",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        time.sleep(interval)


def noop_rate(app, n: int) -> float:
    """No-op tasks per second through the same workers (the last one reports back)."""
    app.send_task("chimney.ping", args=["warm"]).get(timeout=60)
    start = time.perf_counter()
    for _ in range(n - 1):
        app.send_task("chimney.ping", args=["x"], ignore_result=True)
    app.send_task("chimney.ping", args=["done"]).get(timeout=600)
    return n / (time.perf_counter() - start)


def digest_rate(app, env, members: int) -> tuple[float, dict]:
    from django.db.models import Count
    from django_scopes import scopes_disabled

    from notifications.models import Delivery

    start = time.perf_counter()
    app.send_task("notifications.campaign_run", args=[env.pk, "home_value", PERIOD])

    def done():
        with scopes_disabled():
            rows = Delivery.objects.filter(environment=env, campaign_key=f"home_value:{PERIOD}")
            unfinished = rows.filter(state__in=["pending", "sending"]).count()
            return rows.count() >= members and unfinished == 0

    _wait(done, timeout=3600, interval=0.5)
    elapsed = time.perf_counter() - start
    with scopes_disabled():
        states = dict(
            Delivery.objects.filter(environment=env)
            .values_list("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )
    return states.get("sent", 0) / elapsed, states


def measure(members: int = 100_000, noop: int = 20_000) -> tuple[float, float, dict]:
    _setup_django()
    import redis
    from celery import Celery

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = _population(members)
    app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
    with tempfile.TemporaryDirectory() as mail_dir:
        worker = _worker(mail_dir)
        try:
            baseline = noop_rate(app, noop)
            rate, states = digest_rate(app, env, members)
            states["mail files"] = len(os.listdir(mail_dir))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return rate, baseline, states


def run(ctx) -> list:
    rate, own_baseline, _ = measure()
    try:
        baseline = ctx.baseline("noop_task")
    except Exception:  # a runner without that baseline: use the one measured here
        baseline = own_baseline
    return [
        Figure("monthly digest, 100k members", rate, "deliveries/s", "noop_task", baseline, 1.0)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--noop", type=int, default=20_000)
    args = parser.parse_args()
    rate, baseline, states = measure(args.members, args.noop)
    print(f"monthly digest: {args.members} members, 2 worker processes, Redis + PostgreSQL")
    print(f"  outcome: {states}")
    print(f"  digest   {rate:10.0f} deliveries/s")
    print(f"  no-op    {baseline:10.0f} tasks/s (same workers, same run)")
    print(f"  ratio    {rate / baseline:10.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
