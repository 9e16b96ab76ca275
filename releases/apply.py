"""Make an environment's promotable configuration exactly a snapshot (in one transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from institutions.models import Environment
from releases.snapshot import (
    Spec,
    comparable,
    dump_value,
    key_string,
    load_value,
    raw_value,
    specs,
)


@dataclass
class AppliedChange:
    label: str
    key: str
    change: str  # "added", "changed", "removed"
    obj: object
    fields: list[str] = field(default_factory=list)


def _current(spec: Spec, environment: Environment, keymaps: dict) -> dict[str, object]:
    objects = list(spec.model._base_manager.filter(environment=environment).order_by("pk"))
    rows = {}
    for obj in objects:
        key = key_string([dump_value(f, raw_value(obj, f), keymaps) for f in spec.key_fields])
        rows[key] = obj
    keymaps[spec.model] = {obj.pk: key for key, obj in rows.items()}
    return rows


def save_row(obj) -> None:
    """Write one row (a seam: the fault-injection test breaks the deploy here)."""
    obj.save()


def delete_row(obj) -> None:
    obj.delete()


def apply_snapshot(*, environment: Environment, snapshot: dict) -> list[AppliedChange]:
    """Rewrite the environment's registered configuration to equal the snapshot.

    Models absent from the snapshot (registered after it was taken) are left alone.
    Must run inside the caller's transaction: a failure part-way leaves nothing behind.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("apply_snapshot must run inside transaction.atomic()")
    wanted = snapshot.get("models", {})
    ordered = [s for s in specs() if s.label in wanted]
    dump_maps: dict = {}  # model -> {pk: key}, to read the rows that are there now
    current = {spec.label: _current(spec, environment, dump_maps) for spec in ordered}
    changes: list[AppliedChange] = []

    # Removals first, dependants before what they depend on, so that a unique value
    # freed by a removed row can be taken by a row of the snapshot.
    for spec in reversed(ordered):
        for key, obj in list(current[spec.label].items()):
            if key not in wanted[spec.label]:
                changes.append(AppliedChange(spec.label, key, "removed", obj))
                delete_row(obj)
                del current[spec.label][key]

    load_maps: dict = {}  # model -> {key: pk} in this environment, for foreign keys
    for spec in ordered:
        rows = current[spec.label]
        for key, values in wanted[spec.label].items():
            obj = rows.get(key)
            if obj is None:
                obj = spec.model(environment=environment)
                changed = [f.name for f in spec.fields]
                kind = "added"
            else:
                changed = [
                    f.name
                    for f in spec.fields
                    if comparable(dump_value(f, raw_value(obj, f), dump_maps))
                    != comparable(values.get(f.name))
                ]
                kind = "changed"
            if changed:
                for f in spec.fields:
                    if f.name in changed:
                        setattr(obj, f.attname, load_value(f, values.get(f.name), load_maps))
                save_row(obj)
                rows[key] = obj
                changes.append(AppliedChange(spec.label, key, kind, obj, changed))
        load_maps[spec.model] = {key: obj.pk for key, obj in rows.items()}
        dump_maps[spec.model] = {obj.pk: key for key, obj in rows.items()}

    for spec in ordered:
        for m2m in spec.m2m:
            for key, values in wanted[spec.label].items():
                obj = current[spec.label][key]
                target = sorted(values.get(m2m.name) or [], key=key_string)
                have = sorted(
                    (dump_value(m2m, pk, dump_maps) for pk in _m2m_pks(obj, m2m)),
                    key=key_string,
                )
                if have != target:
                    getattr(obj, m2m.name).set([load_value(m2m, v, load_maps) for v in target])
                    changes.append(AppliedChange(spec.label, key, "changed", obj, [m2m.name]))
    return changes


def _m2m_pks(obj, m2m) -> list:
    through = m2m.remote_field.through
    return list(
        through._base_manager.filter(**{f"{m2m.m2m_field_name()}_id": obj.pk}).values_list(
            f"{m2m.m2m_reverse_field_name()}_id", flat=True
        )
    )
