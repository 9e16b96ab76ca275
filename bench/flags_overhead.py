"""Flag evaluation overhead: the member dashboard evaluating ten flags beside the same page
evaluating none, both served by gunicorn in the same run.

    python -m bench flags_overhead          (with the other benchmarks: python -m bench)

The demo member's real dashboard (view, middleware, session, queries, PostgreSQL, Redis)
is served by two gunicorn servers that differ only in the dashboard template
(bench/_flags_templates.py): one evaluates ten flags with `{% flag %}`, the other renders
the same markup with constants. Short rounds alternate between them so that the machine's
drift hits both sides. Two figures: pages per second (median of the rounds) and pages per
CPU second of the servers' processes (steadier on a busy machine; it leaves out the time
spent waiting on Redis and PostgreSQL). Target: overhead <= 10% (ratio >= 0.91).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time

from bench.harness import Context, Figure
from bench.platform import _demo_member, _member_cookie

TARGET_OVERHEAD = 0.10
ROUNDS = 12
SECONDS = 3.0
EXTRA_FLAGS = 7  # beside the three the demo declares: ten flags in all


def _bench_flags(environment, member) -> dict[str, bool]:
    """Ten flags with mixed targeting in the member's environment; their answers for it."""
    from flags import evaluation, registry
    from flags.models import Flag
    from institutions.tenancy import environment_scope

    targeting = [
        {"test_cohort": True},
        {"percent": 50},
        {"everyone": True},
        {"staff": True},
        {"percent": 10, "test_cohort": True},
        {"everyone": False},
        {"percent": 90},
    ]
    with environment_scope(environment):
        for i, fields in enumerate(targeting[:EXTRA_FLAGS]):
            Flag.objects.update_or_create(
                environment=environment, name=f"bench_flag_{i}", defaults=fields
            )
        evaluation.snapshot_invalidate(environment.pk)
        states = evaluation.load_snapshot_from_db(environment)
    names = [*registry.declared(), *(f"bench_flag_{i}" for i in range(EXTRA_FLAGS))]
    return {
        name: evaluation.decide(
            states.get(name), environment_id=environment.pk, member=member, is_staff=False
        )
        for name in names[:10]
    }


def _full_dashboard_member(ctx: Context):
    """A demo member of production whose dashboard shows everything (value, equity, offers)."""
    from homes import selectors
    from homes.models import Member
    from institutions.tenancy import environment_scope

    environment, _ = _demo_member(ctx)
    with environment_scope(environment):
        for member in Member.objects.filter(environment=environment).order_by("pk"):
            board = selectors.dashboard(environment, member)
            if board.property is not None and board.visible.show_value and board.matches:
                return environment, member
    raise RuntimeError(f"No demo member of {environment} has a complete dashboard.")


def _warm(port: int, host: str, headers: dict) -> None:
    """First requests of a fresh server (imports, templates, connections) may take long."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(3):
        conn.request("GET", "/", headers={"Host": host, **headers})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or b"bench-flags" not in body:
            raise RuntimeError(f"The benchmark dashboard answered {response.status}")
    conn.close()


def _server_cpu_seconds(port: int) -> float:
    """User + system CPU time of this port's gunicorn processes (master and workers)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f"127.0.0.1:{port}".encode() not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _load(port: int, host: str, headers: dict, seconds: float, concurrency: int = 4):
    """(requests answered, wall seconds, server CPU seconds) over keep-alive connections."""
    stop = time.monotonic() + seconds
    counts = [0] * concurrency
    errors: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop and not errors:
            conn.request("GET", "/", headers={"Host": host, **headers})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"HTTP {response.status}")
            counts[i] += 1
        conn.close()

    cpu, started = _server_cpu_seconds(port), time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return sum(counts), time.monotonic() - started, _server_cpu_seconds(port) - cpu


def measure(ctx: Context, rounds: int = ROUNDS, seconds: float = SECONDS) -> dict:
    from bench._flags_templates import ANSWERS, VARIANT

    environment, member = _full_dashboard_member(ctx)
    answers = _bench_flags(environment, member)
    headers = {"Cookie": _member_cookie(member)}
    common = {
        "DJANGO_SETTINGS_MODULE": "bench._flags_settings",
        "FLAGS_METRICS_FLUSH_SECONDS": "5",  # the production default (tests flush each time)
        ANSWERS: json.dumps(answers),
    }
    sides = {"bare": [], "flagged": []}
    with (
        ctx.gunicorn(env={**common, VARIANT: "0"}) as bare_port,
        ctx.gunicorn(env={**common, VARIANT: "10"}) as flagged_port,
    ):
        ports = {"bare": bare_port, "flagged": flagged_port}
        for port in ports.values():
            _warm(port, environment.host, headers)
        for i in range(rounds):
            # Alternate which side goes first, so that neither always follows the other.
            for side in ("bare", "flagged") if i % 2 == 0 else ("flagged", "bare"):
                sides[side].append(_load(ports[side], environment.host, headers, seconds))

    def rate(runs):  # pages per wall second, per round
        return [n / wall for n, wall, _ in runs]

    def per_cpu(runs):  # pages per server CPU second, over all rounds
        return sum(n for n, _, _ in runs) / sum(cpu for _, _, cpu in runs)

    names = list(answers)
    return {
        "work_us": flag_work_us(environment, member, names, check_seconds=1.0),
        "work_strict_us": flag_work_us(environment, member, names, check_seconds=0.0),
        "bare": statistics.median(rate(sides["bare"])),
        "flagged": statistics.median(rate(sides["flagged"])),
        "bare_cpu": per_cpu(sides["bare"]),
        "flagged_cpu": per_cpu(sides["flagged"]),
        "rounds": list(zip(rate(sides["bare"]), rate(sides["flagged"]), strict=True)),
        "flags_on": sum(answers.values()),
    }


def flag_work_us(environment, member, names, *, check_seconds: float, n: int = 2000) -> float:
    """CPU µs per request of the flag work alone, in this process on a warm cache: the
    request's flags, ten `waffle.flag_is_active`, and the impression check at the end."""
    import waffle
    from django.conf import settings
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject

    from flags import evaluation
    from institutions.tenancy import environment_scope

    factory = RequestFactory()

    def page() -> None:
        request = factory.get("/", HTTP_HOST=environment.host)
        request.environment = environment
        request.member = SimpleLazyObject(lambda: member)
        request.session = {}
        for name in names:
            waffle.flag_is_active(request, name)
        evaluation.impressions_flush(request)

    def bare() -> None:  # the same request without the flags
        request = factory.get("/", HTTP_HOST=environment.host)
        request.environment = environment
        request.member = SimpleLazyObject(lambda: member)
        request.session = {}

    previous = getattr(settings, "FLAGS_VERSION_CHECK_SECONDS", None)
    settings.FLAGS_VERSION_CHECK_SECONDS = check_seconds
    try:
        with environment_scope(environment):
            page()
            best = []
            for _ in range(5):
                started = time.process_time()
                for _ in range(n):
                    page()
                flagged = time.process_time() - started
                started = time.process_time()
                for _ in range(n):
                    bare()
                best.append((flagged - (time.process_time() - started)) / n * 1e6)
    finally:
        settings.FLAGS_VERSION_CHECK_SECONDS = previous
    return min(best)


def figures(result: dict) -> list[Figure]:
    target = 1 / (1 + TARGET_OVERHEAD)
    return [
        Figure(
            f"member dashboard, 10 flags ({result['flags_on']} on), gunicorn",
            result["flagged"],
            "pages/s",
            "same dashboard, no flags",
            result["bare"],
            target_ratio=target,
        ),
        Figure(
            "member dashboard, 10 flags: server CPU",
            result["flagged_cpu"],
            "pages/CPU s",
            "same dashboard, no flags",
            result["bare_cpu"],
            target_ratio=target,
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    result = measure(ctx)
    for i, (bare, flagged) in enumerate(result["rounds"], 1):
        print(
            f"  round {i}: no flags {bare:,.1f}/s, ten flags {flagged:,.1f}/s, "
            f"ratio {flagged / bare:.3f}"
        )
    page_us = 1e6 / result["bare_cpu"]
    for label, key in (("default", "work_us"), ("version checked every request", "work_strict_us")):
        print(
            f"  ten flags alone, in-process ({label}): {result[key]:,.0f} µs CPU per request, "
            f"{result[key] / page_us:.1%} of the dashboard's {page_us / 1000:,.1f} ms"
        )
    return figures(result)
