"""Test plans: bounded mutated requests as a test member to a live server, then a verdict."""

from __future__ import annotations

import random
import socket
from urllib.parse import urlparse

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from flags.defaults import default_test_plan
from flags.models import TestPlan, TestPlanRun
from flags.mutation import from_template, mutate, plan_requests
from flags.services.testplans import run_test_plan
from institutions.tenancy import environment_scope
from tests.flags.factories import OracleRuleFactory


def test_mutation_plan__seeded__is_reproducible_and_bounded():
    plan = default_test_plan()
    kwargs = {
        "templates": plan["requests"],
        "mutation": plan["mutation"],
        "attack_sets": plan["attack_sets"],
        "count": 300,
        "seed": 7,
        "substitutions": {"origin": "http://x.test"},
    }
    first, again = plan_requests(**kwargs), plan_requests(**kwargs)
    assert [(r.method, r.target, r.headers, r.body) for r in first] == [
        (r.method, r.target, r.headers, r.body) for r in again
    ]
    assert all(len(r.attacks) <= plan["mutation"]["max_attacks"] for r in first)
    mutated = [r for r in first if r.attacks]
    assert 0.3 < len(mutated) / len(first) < 0.95
    assert not any(a.startswith("host") for r in first for a in r.attacks)  # probability 0


def test_mutation__per_part_maximum__is_respected():
    request = from_template({"method": "GET", "path": "/", "query": {"a": "1"}}, {})
    mutation = {
        "max_attacks": 10,
        "parts": {"query": {"attack_set": "v", "probability": 1.0, "max_attacks": 2}},
    }
    for seed in range(20):
        request = from_template({"method": "GET", "path": "/", "query": {"a": "1"}}, {})
        mutate(request, mutation, {"v": ["'", "x"]}, random.Random(seed))
        assert 1 <= len(request.attacks) <= 2


@pytest.mark.parametrize("part_maximum", [0, 1, 2])
def test_mutation__added_header__counts_against_the_headers_maximum(part_maximum):
    mutation = {
        "max_attacks": 10,
        "parts": {
            "headers": {
                "attack_set": "v",
                "probability": 1.0,
                "max_attacks": part_maximum,
                "key_attack_set": "k",
                "key_probability": 1.0,
            }
        },
    }
    for seed in range(20):
        request = from_template({"method": "GET", "path": "/", "headers": {"X-A": "1"}}, {})
        mutate(request, mutation, {"v": ["'", "x"], "k": ["X-Probe"]}, random.Random(seed))
        assert len(request.attacks) <= part_maximum
        assert ("headers[X-Probe] added" in request.attacks) is (part_maximum > 0)


@pytest.fixture
def plan_env(tenant):
    env = tenant.production
    with environment_scope(env):
        OracleRuleFactory(
            environment=env, group="test-plan:live", name="5xx", cohort="test", min_sample=50
        )
        plan = TestPlan.objects.create(
            environment=env,
            **{
                **default_test_plan(),
                "name": "live",
                "rule_group": "test-plan:live",
                "max_requests": 80,
            },
        )
        yield env, plan


@pytest.mark.django_db(transaction=True)
def test_run__default_plan_on_a_live_server__passes_with_the_numbers(plan_env, live_server):
    env, plan = plan_env
    address = live_server.url.replace("http://localhost", "127.0.0.1")
    with environment_scope(env):
        run = run_test_plan(environment=env, plan=plan, address=address, settle_seconds=0)
    assert run.status == TestPlanRun.Status.FINISHED, run.error
    assert run.requests_sent == 80
    assert run.mutated > 10
    assert sum(run.status_counts.values()) == 80
    assert not any(code.startswith("5") for code in run.status_counts), run.server_errors
    assert run.verdict == "pass", run.results
    assert run.results[0]["sample"] >= 50


@pytest.mark.django_db(transaction=True)
def test_run__broken_page__fails_and_the_command_says_so(plan_env, live_server, settings, capsys):
    settings.TENANT_URLCONF = "tests.flags.failing_urls"
    env, plan = plan_env
    with environment_scope(env):
        plan.requests = [{"method": "GET", "path": "/boom/"}, {"method": "GET", "path": "/"}]
        plan.mutation = {}
        plan.save()
    address = live_server.url.replace("http://localhost", "127.0.0.1")
    with pytest.raises(CommandError, match="failed the test plan"):
        call_command(
            "flags_test_plan",
            institution=env.institution.slug,
            environment="production",
            plan="live",
            address=address,
            settle=0,
        )
    out = capsys.readouterr().out
    assert "VERDICT: FAIL" in out
    assert "40 of 80 requests were 5xx" in out


@pytest.mark.django_db
def test_run__address_not_on_this_machine__is_refused(plan_env):
    env, plan = plan_env
    with environment_scope(env), pytest.raises(ValidationError, match="this machine"):
        run_test_plan(environment=env, plan=plan, address="10.0.0.8:80", settle_seconds=0)


@pytest.mark.django_db(transaction=True)
def test_run__environment_on_localhost__reaches_the_local_server(tenant, live_server, settings):
    """With BASE_DOMAIN=localhost the plan's requests go to http://<slug>.staging.localhost:
    PORT, a name browsers resolve to this machine but the operating system's resolver does
    not (no DNS set-up, as the README promises): every request fails to resolve, is counted
    as "no response", and after half a minute the verdict is INCONCLUSIVE ("no data: no
    requests") instead of the requests reaching the server. *.localhost names should be
    sent to the loopback address (RFC 6761), or a resolution failure should stop the run
    with a clear error as a refused connection does."""
    settings.BASE_DOMAIN = "localhost"
    settings.PUBLIC_SCHEME = "http"
    settings.PUBLIC_PORT = str(urlparse(live_server.url).port)
    env = tenant.staging
    with environment_scope(env):
        plan = TestPlan.objects.create(
            environment=env,
            **{**default_test_plan(), "name": "local", "max_requests": 1, "mutation": {}},
        )
        run = run_test_plan(environment=env, plan=plan, settle_seconds=0)
    assert "no response" not in run.status_counts, (run.target, run.status_counts, run.error)
    assert run.requests_sent == 1


@pytest.mark.django_db
def test_run__host_name_not_resolved__stops_with_the_reason(plan_env, monkeypatch):
    def unresolved(address, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unresolved)
    env, plan = plan_env
    with environment_scope(env):
        run = run_test_plan(environment=env, plan=plan, settle_seconds=0)
    assert run.status == TestPlanRun.Status.ERROR
    assert run.error.startswith("Cannot resolve "), run.error
    assert "Name or service not known" in run.error
    assert run.requests_sent == 0
