"""The watch's view of the oracle (flags.oracle): rules in, a verdict with its numbers out.

One oracle serves flag rollouts and release watches; this module only adapts the
institution's watch rules to it and turns its verdict into JSON for the evidence pack.
"""

from __future__ import annotations

import datetime as dt

from flags.oracle import FAIL, INCONCLUSIVE, PASS, RuleSpec, oracle_judge
from releases.models.policy import (
    DEFAULT_WATCH_COHORT,
    DEFAULT_WATCH_MIN_SAMPLE,
    WATCH_COMPARATORS,
)

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "judge", "oracle", "rules_from_policy"]
RESULT_FIELDS = (
    "metric",
    "cohort",
    "value",
    "sample",
    "pass_threshold",
    "fail_threshold",
    "min_sample",
    "verdict",
    "detail",
)


def rules_from_policy(policy) -> list[RuleSpec]:
    """The institution's watch rules as oracle rules (ReleasePolicy.clean checks them).

    A rule without min_sample takes the oracle's own default, never 0: with no minimum a
    single failed request is a 100% error rate and rolls production back. A rule without
    a cohort leaves test members out (DEFAULT_WATCH_COHORT).
    """
    return [
        RuleSpec(
            metric=r["metric"],
            comparator=WATCH_COMPARATORS[r.get("comparator", "lower")],
            pass_threshold=float(r["pass_threshold"]),
            fail_threshold=float(r["fail_threshold"]),
            min_sample=int(r.get("min_sample", DEFAULT_WATCH_MIN_SAMPLE)),
            cohort=r.get("cohort", DEFAULT_WATCH_COHORT),
            name=r.get("name", r["metric"]),
        )
        for r in policy.watch_rules
    ]


def oracle():
    """The one oracle (flags), also used by flag rollouts and test plans."""
    return oracle_judge


def first_whole_minute(moment: dt.datetime) -> dt.datetime:
    """`moment` if it is on a minute, else the start of the next minute."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + dt.timedelta(minutes=1)


def judge(*, environment, rules, start: dt.datetime, end: dt.datetime):
    """The oracle's verdict on production from the first whole minute after `start`.

    Request counters are kept per minute and a metric counts the bucket its start falls
    in whole: a deploy at 23:00:40 would be blamed for the errors the configuration it
    replaced answered from 23:00:00. Until that first whole minute the period is empty.
    """
    start = first_whole_minute(start)
    return oracle()(environment=environment, rules=rules, start=start, end=max(start, end))


def verdict_record(verdict, *, at: dt.datetime) -> dict:
    """The verdict as JSON, with every rule's numbers (for the release and its evidence)."""
    return {
        "at": at.isoformat(),
        "verdict": verdict.verdict,
        "detail": getattr(verdict, "detail", ""),
        "results": [
            {name: _plain(getattr(result, name, None)) for name in RESULT_FIELDS}
            for result in verdict.results
        ],
    }


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def explain(record: dict) -> str:
    failing = [r for r in record.get("results", []) if r.get("verdict") == FAIL]
    parts = [
        f"{r['metric']} = {r['value']} on {r['sample']} (fails at {r['fail_threshold']})"
        + (f": {r['detail']}" if r.get("detail") else "")
        for r in failing
    ]
    return "; ".join(parts) or record.get("detail", "") or record.get("verdict", "")
