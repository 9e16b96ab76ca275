"""The data plan in force per environment, compiled once per process and version."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from institutions import page_cache

PLAN_TTL = 3600


@dataclass(frozen=True)
class ActivePlan:
    version: int | None  # None: the environment has no data plan yet
    digest: str
    points: dict
    unplanned: str  # "allow" | "quarantine"
    invalid: str


NO_PLAN = ActivePlan(None, "", {}, "allow", "allow")
_compiled: dict[tuple[int, str], dict[str, Draft202012Validator]] = {}
_lock = threading.Lock()


def plan_key(environment_id: int) -> str:
    return f"flags:env:{environment_id}:dataplan"


def schema_errors(points) -> dict[str, str]:
    """Problems with a plan's points: {event name: message}; empty when all schemas are valid."""
    errors: dict[str, str] = {}
    if not isinstance(points, dict):
        return {"points": "The plan must map event names to {description, schema}."}
    for name, point in points.items():
        if not isinstance(point, dict) or not isinstance(point.get("schema"), dict):
            errors[name] = 'Give {"description": "...", "schema": {...JSON Schema...}}.'
            continue
        try:
            Draft202012Validator.check_schema(point["schema"])
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            errors[name] = f"Not a valid JSON Schema at {where}: {exc.message}"
    return errors


def validate_points(points) -> None:
    errors = schema_errors(points)
    if errors:
        raise ValidationError({"points": [f"{name}: {msg}" for name, msg in errors.items()]})


def active_plan(environment) -> ActivePlan:
    """The highest plan version of the environment (cached; dropped when a version is saved)."""
    cached = page_cache.get(environment.pk, plan_key(environment.pk))
    if cached is not None:
        return cached
    from flags.models import DataPlanVersion

    row = (
        DataPlanVersion.objects.filter(environment=environment)
        .order_by("-version")
        .values("version", "points", "unplanned", "invalid")
        .first()
    )
    if row is None:
        plan = NO_PLAN
    else:
        digest = hashlib.sha256(json.dumps(row["points"], sort_keys=True).encode()).hexdigest()[:16]
        plan = ActivePlan(row["version"], digest, row["points"], row["unplanned"], row["invalid"])
    page_cache.store(environment.pk, plan_key(environment.pk), plan, PLAN_TTL)
    return plan


def validators(environment_id: int, plan: ActivePlan) -> dict[str, Draft202012Validator]:
    key = (environment_id, plan.digest)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = {
            name: Draft202012Validator(point["schema"]) for name, point in plan.points.items()
        }
        with _lock:
            _compiled[key] = compiled
    return compiled


def check(validator: Draft202012Validator, properties) -> list[str]:
    """Violations of one event's properties, as readable messages (path: message)."""
    out = []
    for error in validator.iter_errors(properties):
        where = "/".join(str(p) for p in error.absolute_path) or "(properties)"
        out.append(f"{where}: {error.message}"[:300])
        if len(out) >= 10:
            break
    return out
