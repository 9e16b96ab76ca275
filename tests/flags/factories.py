"""Factories for every flags tenant model (the generic isolation tests use them too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory
from django.utils import timezone

from flags.models import (
    AnalyticsConsent,
    AnalyticsSummary,
    DataPlanVersion,
    Destination,
    DestinationBatch,
    Event,
    Flag,
    OracleRule,
    RequestMetric,
    Rollout,
    TestPlan,
    TestPlanRun,
)
from tests.factories import MemberFactory, TenantFactory, tenant_factory


@tenant_factory(Flag)
class FlagFactory(TenantFactory):
    class Meta:
        model = Flag

    name = factory.Sequence(lambda n: f"flag_{n}")
    note = "A flag made by a test."


@tenant_factory(Rollout)
class RolloutFactory(TenantFactory):
    class Meta:
        model = Rollout

    flag = factory.LazyAttribute(lambda o: FlagFactory(environment=o.environment))
    steps = factory.LazyFunction(lambda: ["test", 5, "everyone"])
    step_started_at = factory.LazyFunction(timezone.now)


@tenant_factory(DataPlanVersion)
class DataPlanVersionFactory(TenantFactory):
    class Meta:
        model = DataPlanVersion

    version = factory.Sequence(lambda n: n + 1)
    points = factory.LazyFunction(
        lambda: {"offer_viewed": {"description": "x", "schema": {"type": "object"}}}
    )


@tenant_factory(Event)
class EventFactory(TenantFactory):
    class Meta:
        model = Event

    name = "offer_viewed"
    occurred_at = factory.LazyFunction(timezone.now)
    plan_status = Event.PlanStatus.UNPLANNED
    properties = factory.LazyFunction(lambda: {"offer_id": 1, "offer_kind": "heloc"})


@tenant_factory(AnalyticsConsent)
class AnalyticsConsentFactory(TenantFactory):
    class Meta:
        model = AnalyticsConsent

    member = factory.LazyAttribute(lambda o: MemberFactory(environment=o.environment))
    granted = True


@tenant_factory(Destination)
class DestinationFactory(TenantFactory):
    class Meta:
        model = Destination

    name = factory.Sequence(lambda n: f"destination {n}")
    kind = Destination.Kind.WEBHOOK
    url = "http://127.0.0.1:9/hook"
    secret = "s3cret"


@tenant_factory(DestinationBatch)
class DestinationBatchFactory(TenantFactory):
    class Meta:
        model = DestinationBatch

    destination = factory.LazyAttribute(lambda o: DestinationFactory(environment=o.environment))
    first_event_id = 1
    last_event_id = 1
    event_count = 1
    payload = factory.LazyFunction(list)
    next_attempt_at = factory.LazyFunction(timezone.now)


@tenant_factory(AnalyticsSummary)
class AnalyticsSummaryFactory(TenantFactory):
    class Meta:
        model = AnalyticsSummary

    destination = factory.LazyAttribute(lambda o: DestinationFactory(environment=o.environment))
    day = factory.LazyFunction(lambda: timezone.now().date())
    event_name = "offer_viewed"
    events = 1
    members = 1


@tenant_factory(RequestMetric)
class RequestMetricFactory(TenantFactory):
    class Meta:
        model = RequestMetric

    minute = factory.Sequence(lambda n: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
    cohort = "member"
    count = 1


@tenant_factory(OracleRule)
class OracleRuleFactory(TenantFactory):
    class Meta:
        model = OracleRule

    group = "release"
    name = factory.Sequence(lambda n: f"rule {n}")
    metric = "http_5xx_rate"
    comparator = "lower"
    pass_threshold = 0.01
    fail_threshold = 0.05
    min_sample = 100


@tenant_factory(TestPlan)
class PlanFactory(TenantFactory):
    class Meta:
        model = TestPlan

    name = factory.Sequence(lambda n: f"plan {n}")
    requests = factory.LazyFunction(lambda: [{"method": "GET", "path": "/"}])
    max_requests = 10


@tenant_factory(TestPlanRun)
class PlanRunFactory(TenantFactory):
    class Meta:
        model = TestPlanRun

    plan = factory.LazyAttribute(lambda o: PlanFactory(environment=o.environment))
    target = "http://127.0.0.1:1"
    started_at = factory.LazyFunction(timezone.now)
