"""Running a test plan: bounded requests as a test member, then the oracle's verdict."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from flags import mutation
from flags.models import TestPlan, TestPlanRun
from flags.oracle import RuleSpec, oracle_judge, rules_for

HARD_MAX_REQUESTS = 1000
MAX_SECONDS = 120
DEFAULT_RULE = RuleSpec("http_5xx_rate", "lower", 0.01, 0.05, 100, 0, "test", "5xx rate (test)")


def _loopback(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or address
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local or not port.isdigit():
        raise ValidationError(
            {"address": "Only this machine's addresses (127.0.0.1:PORT, [::1]:PORT)."}
        )
    return host, int(port)


def _connect_host(hostname: str) -> str:
    """Names under `localhost` are this machine (RFC 6761): browsers know it, the system's
    resolver often does not, so connect to localhost itself (the Host header keeps the name)."""
    name = hostname.rstrip(".")
    return "localhost" if name == "localhost" or name.endswith(".localhost") else hostname


def plan_test_member(environment):
    """The environment's first test member, or a new one made for test plans."""
    from homes.models import Member
    from homes.services import member_create

    member = Member.objects.filter(environment=environment, is_test=True).order_by("pk").first()
    return member or member_create(
        environment=environment,
        email=f"test-plans@{environment.host}.invalid",
        first_name="Test",
        last_name="Plan",
        is_test=True,
        enrollment=Member.Enrollment.ENROLLED,
        actor_label="test plan",
    )


def _member_session(environment, member) -> str:
    from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[MEMBER_SESSION_KEY] = member.pk
    store[MEMBER_ENV_SESSION_KEY] = environment.pk
    store.create()
    return store.session_key


def _send(connection_target, environment, request, session_key: str) -> int:
    scheme, host, port = connection_target
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = cls(host, port, timeout=10)
    cookies = {settings.SESSION_COOKIE_NAME: session_key, **request.cookies}
    headers = {
        "Host": request.host or environment.host,
        "User-Agent": "Chimney-TestPlan/1",
        **request.headers,
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
    }
    body = request.body.encode("utf-8", "surrogatepass") if request.body is not None else None
    try:
        connection.request(request.method, request.target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def run_test_plan(
    *, environment, plan: TestPlan, actor=None, address: str | None = None, settle_seconds=None
) -> TestPlanRun:
    """Send the plan's requests (bounded) as a test member, then judge them with the oracle.

    `address` (tests, local runs) must be a loopback host:port; without it the requests go
    to the environment's own public address.
    """
    if address:
        host, port = _loopback(address)
        target = ("http", host, port)
    else:
        parts = urlsplit(environment.base_url)
        target = (
            parts.scheme,
            _connect_host(parts.hostname),
            parts.port or (443 if parts.scheme == "https" else 80),
        )
    member = plan_test_member(environment)
    count = min(plan.max_requests, HARD_MAX_REQUESTS)
    planned = mutation.plan_requests(
        templates=plan.requests,
        mutation=plan.mutation,
        attack_sets=plan.attack_sets,
        count=count,
        seed=plan.seed,
        substitutions={"origin": environment.base_url, "host": environment.host},
    )
    run = TestPlanRun.objects.create(
        environment=environment,
        plan=plan,
        target=f"{target[0]}://{target[1]}:{target[2]} (Host: {environment.host})",
        started_at=timezone.now(),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
    session_key = _member_session(environment, member)
    statuses: dict[str, int] = {}
    server_errors = []
    deadline = time.monotonic() + MAX_SECONDS
    for request in planned:
        if time.monotonic() > deadline:
            break
        try:
            status = _send(target, environment, request, session_key)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            status = "no response"
            unreachable = isinstance(exc, ConnectionRefusedError | socket.gaierror)
            if unreachable and run.requests_sent == 0:
                cannot = (
                    f"Cannot resolve {target[1]}"
                    if isinstance(exc, socket.gaierror)
                    else "Cannot connect"
                )
                run.status, run.error = TestPlanRun.Status.ERROR, f"{cannot}: {exc}"
                run.finished_at = timezone.now()
                run.save()
                return run
        run.requests_sent += 1
        run.mutated += bool(request.attacks)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if isinstance(status, int) and status >= 500 and len(server_errors) < 20:
            server_errors.append(
                {
                    "method": request.method,
                    "target": request.target[:200],
                    "status": status,
                    "attacks": request.attacks,
                }
            )
    if settle_seconds is None:
        settle_seconds = float(getattr(settings, "FLAGS_METRICS_FLUSH_SECONDS", 5.0)) + 1
    time.sleep(settle_seconds)  # other processes flush their request counts
    run.finished_at = timezone.now()
    rules = rules_for(environment, plan.rule_group) or [DEFAULT_RULE]
    verdict = oracle_judge(
        environment=environment, rules=rules, start=run.started_at, end=run.finished_at
    )
    run.status = TestPlanRun.Status.FINISHED
    run.status_counts = dict(sorted(statuses.items()))
    run.server_errors = server_errors
    run.verdict = verdict.verdict
    run.results = [r.as_dict() for r in verdict.results]
    run.save()
    return run
