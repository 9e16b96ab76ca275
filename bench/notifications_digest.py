"""Monthly digest throughput: 100,000 members, two Celery worker processes, Redis, PostgreSQL.

    python -m bench notifications_digest
    (CHIMNEY_BENCH_MEMBERS=20000 for a shorter run; the figure is named after its size)

The whole campaign is timed, from the `campaign_run` task being queued until every
delivery is sent: fan-out in chunks, planning, bulk writes, rendering, MIME, the outbox
marks. Mail goes to a local sink, Django's file backend (one file per batch connection),
so the figure is about notifications, not a mail server; afterwards the messages in the
sink are counted against the sent rows. Home data comes from a synthetic, deterministic
stand-in for homes.selectors.home_summaries (the valuations have their own benchmark).
Beside it: the no-op Celery task rate through two worker processes on the same Redis,
measured in the same run (`ctx.baseline("noop_task")`).
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from decimal import Decimal

from bench.harness import Figure

PERIOD = "2026-05"
SLUG = "benchdigest"


def home_summaries(*, environment, member_ids) -> dict:
    """Synthetic home data in the shape homes provides (deterministic per member)."""
    from homes.selectors import HomeSummary

    out = {}
    for m in member_ids:
        value = Decimal(250000 + (m * 7919) % 500000)
        out[m] = HomeSummary(
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


def population(members: int):
    """An institution with `members` enrolled members (production), made once."""
    from django_scopes import scopes_disabled

    from homes.models import Member
    from institutions.models import Institution
    from institutions.services import institution_create
    from institutions.tenancy import environment_scope

    with scopes_disabled():
        institution = Institution.objects.filter(slug=SLUG).first() or institution_create(
            slug=SLUG,
            display_name="Bench CU",
            legal_name="Bench Credit Union",
            postal_address="1 Bench Road, Springfield",
            time_zone="America/Chicago",
        )
        env = institution.environments.select_related("institution").get(kind="production")
    with environment_scope(env):
        have = Member.objects.filter(environment=env).count()
        Member.objects.bulk_create(
            [
                Member(
                    environment=env,
                    email=f"m{i}@bench.example",
                    first_name=f"M{i}",
                    last_name="Bench",
                    external_id=f"B{i}",
                    enrollment="enrolled",
                )
                for i in range(have, members)
            ],
            batch_size=5000,
        )
    _analyze()
    return env


def _analyze() -> None:
    """Planner statistics for the rows just made, as autovacuum would gather them."""
    from django.db import connection

    from homes.models import Member

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Member._meta.db_table)}")


def unfinished(env) -> bool:
    """Whether any delivery of the digest is still pending or sending: one index probe
    (the poller must not take the database time the workers are measured on)."""
    from django_scopes import scopes_disabled

    from notifications.models import Delivery

    with scopes_disabled():
        return (
            Delivery.objects.filter(
                environment=env,
                campaign_key=f"home_value:{PERIOD}",
                state__in=[Delivery.State.PENDING, Delivery.State.SENDING],
            )
            .order_by()
            .exists()
        )


def progress(env, sink_dir) -> tuple:
    """Something that changes while the run makes progress: rows written, bytes sunk."""
    from django.db.models import Max
    from django_scopes import scopes_disabled

    from notifications.models import Delivery

    with scopes_disabled():
        written = Delivery.objects.filter(environment=env).aggregate(m=Max("id"))["m"]
    sunk = sum(entry.stat().st_size for entry in os.scandir(sink_dir))
    return written, sunk


def states(env) -> dict[str, int]:
    from django.db.models import Count
    from django_scopes import scopes_disabled

    from notifications.models import Delivery

    with scopes_disabled():
        return dict(
            Delivery.objects.filter(environment=env, campaign_key=f"home_value:{PERIOD}")
            .values("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )


#: No progress for this long while rows are pending: the queued send tasks were lost.
STALL_SECONDS = 10


def sweep(env) -> int:
    """What beat's sweeper does after NOTIFICATIONS_REDISPATCH_SECONDS, done at once."""
    from datetime import timedelta

    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from institutions.tenancy import environment_scope
    from notifications.services import deliveries_sweep

    later = timezone.now() + timedelta(seconds=settings.NOTIFICATIONS_REDISPATCH_SECONDS + 1)
    with environment_scope(env), transaction.atomic():
        result = deliveries_sweep(environment=env, now=later)
    print(f"  stalled {STALL_SECONDS} s with deliveries pending: swept {result}", flush=True)
    return result["dispatched"]


def messages_in(sink_dir) -> int:
    """Messages the file backend wrote (one header line each)."""
    count = 0
    for name in os.listdir(sink_dir):
        with open(os.path.join(sink_dir, name), "rb") as f:
            count += f.read().count(b"\nX-Chimney-Delivery: ")
    return count


def run(ctx) -> list[Figure]:
    from celery import Celery

    members = int(os.environ.get("CHIMNEY_BENCH_MEMBERS", "100000"))
    baseline = ctx.baseline("noop_task")
    env = population(members)
    sink_dir = ctx.var / "digest-mail"
    shutil.rmtree(sink_dir, ignore_errors=True)
    sink_dir.mkdir(parents=True)
    worker_env = {
        "EMAIL_URL": f"filemail:///{sink_dir}",
        "NOTIFICATIONS_HOME_SUMMARIES": "bench.notifications_digest.home_summaries",
    }
    app = Celery("bench-digest", broker=ctx.redis_url)
    resweeps = 0
    with ctx.celery_workers(processes=2, env=worker_env):
        started = time.monotonic()
        app.send_task("notifications.campaign_run", args=[env.pk, "home_value", PERIOD])
        deadline = started + 3600
        last, last_change = None, time.monotonic()
        while True:
            if not unfinished(env):
                now = states(env)  # a full count only when nothing seems left to do
                if sum(now.values()) >= members and not (now.get("pending") or now.get("sending")):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"digest unfinished after an hour: {states(env)}")
            now = progress(env, sink_dir)
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                resweeps += sweep(env)
                last_change = time.monotonic()
            time.sleep(0.25)
        elapsed = time.monotonic() - started
    final = states(env)
    written = messages_in(sink_dir)
    shutil.rmtree(sink_dir, ignore_errors=True)
    print(f"  digest: {members:,} members in {elapsed:.1f} s; states {final}; sink {written:,}")
    if resweeps:
        print(
            f"  DISTURBED: the broker lost queued tasks (Redis restarted?); the outbox sweeper "
            f"re-dispatched {resweeps:,} deliveries; the time includes {STALL_SECONDS} s stalls"
        )
    if final.get("sent", 0) != members or written != members:
        raise RuntimeError(f"expected {members} sent and in the sink: {final}, sink {written}")
    return [
        Figure(
            f"monthly digest, {members:,} members",
            members / elapsed,
            "deliveries/s",
            "noop_task (2 worker processes)",
            baseline,
            1.0,
        )
    ]
