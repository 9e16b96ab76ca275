"""The data plan in force per environment, compiled once per process and version."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

import referencing
from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema_specifications import REGISTRY as META_SCHEMAS
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

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
# No retrieval: a `$ref` resolves within the schema itself (or the JSON Schema meta-schemas
# the library ships); nothing named by a plan is ever fetched from elsewhere.
LOCAL_ONLY = referencing.Registry()
# Keywords whose values are data, not subschemas: a "$ref" key inside them is no reference.
DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


@dataclass(frozen=True)
class BrokenSchema:
    """A point whose schema cannot be applied (saved before it was checked): its events
    are recorded as invalid with this message instead of being validated."""

    message: str


_compiled: dict[tuple[int, str], dict[str, Draft202012Validator | BrokenSchema]] = {}
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
        problem = _schema_problem(point["schema"])
        if problem:
            errors[name] = problem
    return errors


def _schema_problem(schema: dict) -> str:
    """Why a schema cannot be applied to events, or "" when it can."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return f"Not a valid JSON Schema at {where}: {exc.message}"
    resolver = META_SCHEMAS.resolver_with_root(DRAFT202012.create_resource(schema))
    return _unresolved_ref(schema, resolver, ())


def _unresolved_ref(node, resolver, path: tuple) -> str:
    """The first `$ref`/`$dynamicRef` under node that does not resolve locally, as a message."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            problem = _unresolved_ref(item, resolver, (*path, index))
            if problem:
                return problem
        return ""
    if not isinstance(node, dict):
        return ""
    if isinstance(node.get("$id"), str):
        resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
    for keyword in ("$ref", "$dynamicRef"):
        ref = node.get(keyword)
        if not isinstance(ref, str):
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            where = "/".join(str(p) for p in path) or "(root)"
            return (
                f"{keyword} {ref!r} at {where} names nothing in this schema "
                "(only references within the schema are followed)."
            )
    for key, value in node.items():
        if key not in DATA_KEYWORDS:
            problem = _unresolved_ref(value, resolver, (*path, key))
            if problem:
                return problem
    return ""


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


def _compile(point) -> Draft202012Validator | BrokenSchema:
    schema = point.get("schema") if isinstance(point, dict) else None
    if not isinstance(schema, dict):
        return BrokenSchema("the plan gives no schema for this event")
    problem = _schema_problem(schema)
    if problem:
        return BrokenSchema(problem)
    return Draft202012Validator(schema, registry=LOCAL_ONLY)


def validators(
    environment_id: int, plan: ActivePlan
) -> dict[str, Draft202012Validator | BrokenSchema]:
    """The plan's points compiled; a point that cannot be applied is a BrokenSchema."""
    key = (environment_id, plan.digest)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = {name: _compile(point) for name, point in plan.points.items()}
        with _lock:
            _compiled[key] = compiled
    return compiled


def check(validator: Draft202012Validator | BrokenSchema, properties) -> list[str]:
    """Violations of one event's properties, as readable messages (path: message). A schema
    that cannot be applied is itself the violation: the event is kept, marked invalid."""
    if isinstance(validator, BrokenSchema):
        return [f"(schema): cannot be applied: {validator.message}"[:300]]
    out = []
    try:
        for error in validator.iter_errors(properties):
            where = "/".join(str(p) for p in error.absolute_path) or "(properties)"
            out.append(f"{where}: {error.message}"[:300])
            if len(out) >= 10:
                break
    except (Unresolvable, SchemaError) as exc:
        return [f"(schema): cannot be applied: {exc}"[:300]]
    return out
