"""The oracle's comparators and verdicts, and the request metrics it reads."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from flags import request_metrics
from flags.metric_providers import percentile_from_histogram
from flags.models import RequestMetric
from flags.oracle import DEFAULT_5XX_RULE, RuleSpec, compare, oracle_judge
from institutions import metrics
from institutions.metrics import Measurement
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "pass"),
        (0.0099, "pass"),
        (0.01, "inconclusive"),
        (0.049, "inconclusive"),
        (0.05, "fail"),
        (0.5, "fail"),
    ],
)
def test_compare__lower_is_better__pass_under_fail_at_or_above(value, expected):
    assert compare("lower", value, 0.01, 0.05) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, "pass"),
        (0.2001, "pass"),
        (0.2, "inconclusive"),
        (0.11, "inconclusive"),
        (0.1, "fail"),
        (0.0, "fail"),
    ],
)
def test_compare__higher_is_better__pass_over_fail_at_or_below(value, expected):
    assert compare("higher", value, 0.2, 0.1) == expected


@pytest.fixture
def fake_metrics(monkeypatch):
    values = {}
    monkeypatch.setattr(metrics, "_providers", dict(metrics._providers))

    def provide(name):
        def provider(environment, start, end, cohort):
            return values[name]

        metrics.register_metric(name, provider, description=name)

    for name in ("http_5xx_rate", "selection"):
        provide(name)
    return values


def _judge(rules):
    end = timezone.now()
    return oracle_judge(environment=None, rules=rules, start=end - timedelta(hours=1), end=end)


def test_oracle__default_5xx_rule__needs_100_requests_and_judges_by_thresholds(fake_metrics):
    fake_metrics["http_5xx_rate"] = Measurement(0.0, 99, "0 of 99")
    small = _judge([DEFAULT_5XX_RULE])
    assert small.verdict == "inconclusive"
    assert "below the minimum 100" in small.results[0].detail
    fake_metrics["http_5xx_rate"] = Measurement(0.005, 1000, "5 of 1000")
    assert _judge([DEFAULT_5XX_RULE]).verdict == "pass"
    fake_metrics["http_5xx_rate"] = Measurement(0.05, 200, "10 of 200")
    failed = _judge([DEFAULT_5XX_RULE])
    assert failed.verdict == "fail"
    assert failed.results[0].value == 0.05
    assert failed.results[0].sample == 200
    fake_metrics["http_5xx_rate"] = Measurement(None, 0, "no requests")
    assert _judge([DEFAULT_5XX_RULE]).verdict == "inconclusive"


def test_oracle__combined__any_fail_fails_all_pass_passes_else_inconclusive(fake_metrics):
    higher = RuleSpec("selection", "higher", 0.2, 0.1, 10)
    fake_metrics["http_5xx_rate"] = Measurement(0.0, 500)
    fake_metrics["selection"] = Measurement(0.3, 50)
    assert _judge([DEFAULT_5XX_RULE, higher]).verdict == "pass"
    fake_metrics["selection"] = Measurement(0.15, 50)
    assert _judge([DEFAULT_5XX_RULE, higher]).verdict == "inconclusive"
    fake_metrics["selection"] = Measurement(0.05, 50)
    assert _judge([DEFAULT_5XX_RULE, higher]).verdict == "fail"
    assert _judge([]).verdict == "inconclusive"
    unknown = _judge([RuleSpec("no_such_metric", "lower", 1, 2, 0)])
    assert unknown.verdict == "inconclusive"
    assert "Unknown metric" in unknown.results[0].detail


def test_histogram_percentile__p95__is_the_bound_of_its_bucket():
    assert percentile_from_histogram([0] * 9, 0.95) is None
    assert percentile_from_histogram([90, 0, 10, 0, 0, 0, 0, 0, 0], 0.95) == 50.0
    assert percentile_from_histogram([0, 0, 0, 0, 0, 0, 0, 0, 5], 0.95) == 5000.0


def test_request_metrics_flush__write_fails_midway__written_counts_gone_the_rest_kept(
    monkeypatch, settings
):
    settings.FLAGS_METRICS_FLUSH_SECONDS = 3600  # record() does not flush by itself
    monkeypatch.setattr(request_metrics, "_last_flush", time.monotonic())
    request_metrics.record(1, "member", 200, 5)
    request_metrics.record(1, "test", 200, 5)
    request_metrics.record(1, "anonymous", 500, 5)
    request_metrics.record(1, "anonymous", 200, 5)
    written = []

    def upsert(key, row):
        if len(written) == 1:
            raise RuntimeError("database down")
        written.append((key[2], row[0]))

    monkeypatch.setattr(request_metrics, "_upsert", upsert)
    with pytest.raises(RuntimeError, match="database down"):
        request_metrics.flush()
    kept = {key[2]: (row[0], row[1]) for key, row in request_metrics._buffer.items()}
    assert written == [("member", 1)]
    assert kept == {"test": (1, 0), "anonymous": (2, 1)}
    # The next flush writes what was kept, once.
    written.append(("-", 0))  # past the failing call
    assert request_metrics.flush() == 2
    assert sorted(written[2:]) == [("anonymous", 2), ("test", 1)]
    assert request_metrics._buffer == {}


@pytest.mark.django_db
def test_request_metrics__member_pages__counted_per_cohort_and_judged(tenant, settings):
    settings.TENANT_URLCONF = "tests.flags.failing_urls"
    env = tenant.production
    tester = member_client(MemberFactory(environment=env, is_test=True))
    tester.raise_request_exception = False  # answer 500 like a real server
    start = timezone.now() - timedelta(minutes=1)
    for _ in range(120):
        tester.get("/login/")
    for _ in range(8):
        assert tester.get("/boom/").status_code == 500
    anonymous = Client(HTTP_HOST=env.host)
    anonymous.get("/login/")
    request_metrics.flush()
    with environment_scope(env):  # one row per minute: the requests may span two
        rows = {
            r["cohort"]: r
            for r in RequestMetric.objects.filter(environment=env)
            .values("cohort")
            .annotate(count=Sum("count"), errors=Sum("errors"))
        }
    assert (rows["test"]["count"], rows["test"]["errors"]) == (128, 8)
    assert rows["anonymous"]["count"] == 1
    end = timezone.now() + timedelta(minutes=1)
    verdict = oracle_judge(
        environment=env,
        rules=[RuleSpec("http_5xx_rate", "lower", 0.01, 0.05, 100, 0, "test")],
        start=start,
        end=end,
    )
    assert verdict.verdict == "fail"
    assert "8 of 128" in verdict.results[0].detail
    clean = oracle_judge(
        environment=env,
        rules=[RuleSpec("http_5xx_rate", "lower", 0.01, 0.05, 1, 0, "non_test")],
        start=start,
        end=end,
    )
    assert clean.verdict == "pass"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("metric", "passing", "failing", "bad_field"),
    [
        ("http_5xx_rate", 1.0, 5.0, "fail_threshold"),  # 5 meant as 5%: never reached
        ("http_5xx_rate", -0.1, 0.05, "pass_threshold"),
        ("http_p95_latency_ms", -5.0, 800.0, "pass_threshold"),
    ],
)
def test_rule__threshold_the_metric_never_reaches__refused(
    tenant, metric, passing, failing, bad_field
):
    from django.core.exceptions import ValidationError

    from tests.flags.factories import OracleRuleFactory

    env = tenant.staging
    with environment_scope(env):
        rule = OracleRuleFactory.build(
            environment=env,
            metric=metric,
            comparator="lower",
            pass_threshold=passing,
            fail_threshold=failing,
        )
        with pytest.raises(ValidationError) as refused:
            rule.full_clean()
    assert list(refused.value.message_dict) == [bad_field]
    assert "out of range" in refused.value.message_dict[bad_field][0]


@pytest.mark.django_db
def test_rule__thresholds_within_the_metric_range__accepted(tenant):
    from tests.flags.factories import OracleRuleFactory

    env = tenant.staging
    with environment_scope(env):
        rule = OracleRuleFactory.build(
            environment=env, metric="http_5xx_rate", pass_threshold=0.0, fail_threshold=1.0
        )
        rule.full_clean()
