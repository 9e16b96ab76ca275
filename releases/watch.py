"""The watch's view of the oracle (flags.oracle): rules in, a verdict with its numbers out.

One oracle serves flag rollouts and release watches; this module only adapts the
institution's watch rules to it and turns its verdict into JSON for the evidence pack.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
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


@dataclass(frozen=True)
class WatchRule:
    """One oracle rule as the watch states it (lower is better unless comparator is "gt")."""

    metric: str
    pass_threshold: float
    fail_threshold: float
    min_sample: int
    comparator: str = "lt"
    cohort: str = "all"


@dataclass(frozen=True)
class Unjudged:
    verdict: str
    results: tuple = ()
    detail: str = ""


def rules_from_policy(policy) -> list[WatchRule]:
    return [
        WatchRule(
            metric=r["metric"],
            pass_threshold=float(r["pass_threshold"]),
            fail_threshold=float(r["fail_threshold"]),
            min_sample=int(r.get("min_sample", 0)),
            comparator=r.get("comparator", "lt"),
            cohort=r.get("cohort", "all"),
        )
        for r in policy.watch_rules
    ]


def oracle():
    """The oracle's judge function, or None while the flags app is not installed."""
    try:
        from flags.oracle import oracle_judge
    except ImportError:
        return None
    return oracle_judge


def judge(*, environment, rules, start: dt.datetime, end: dt.datetime):
    judge_fn = oracle()
    if judge_fn is None:
        return Unjudged(INCONCLUSIVE, detail="No oracle is installed: a person must judge.")
    return judge_fn(environment=environment, rules=rules, start=start, end=end)


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
