"""Testing in production: flags, events and data plans, destinations, metrics, test plans."""

from flags.models.destinations import AnalyticsSummary, Destination, DestinationBatch
from flags.models.events import AnalyticsConsent, DataPlanVersion, Event
from flags.models.flags import Flag, Rollout
from flags.models.metrics import BUCKET_FIELDS, LATENCY_BOUNDS_MS, OracleRule, RequestMetric
from flags.models.testplans import TestPlan, TestPlanRun

__all__ = [
    "BUCKET_FIELDS",
    "LATENCY_BOUNDS_MS",
    "AnalyticsConsent",
    "AnalyticsSummary",
    "DataPlanVersion",
    "Destination",
    "DestinationBatch",
    "Event",
    "Flag",
    "OracleRule",
    "RequestMetric",
    "Rollout",
    "TestPlan",
    "TestPlanRun",
]
