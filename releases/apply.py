"""Make an environment's promotable configuration exactly a snapshot (in one transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction

from institutions import promotion
from institutions.models import Environment
from releases.models import RetiredRow
from releases.snapshot import (
    Spec,
    comparable,
    dump_value,
    key_string,
    load_value,
    raw_value,
    retired_ids,
    specs,
)

#: A row that member data refers to is never deleted by a release: it is retired, this
#: boolean set to False (member pages and matching already leave inactive rows out).
RETIRE_FIELD = "is_active"


@dataclass
class AppliedChange:
    label: str
    key: str
    change: str  # "added", "changed", "removed", "retired" (kept, inactive), "restored"
    obj: object
    fields: list[str] = field(default_factory=list)


def _rows(spec: Spec, environment: Environment, keymaps: dict, retired: dict) -> tuple[dict, dict]:
    """The environment's rows of one model by key: (configuration, retired rows)."""
    objects = list(spec.model._base_manager.filter(environment=environment).order_by("pk"))
    retired_pks = set(retired.get(spec.label, ()))
    active: dict[str, object] = {}
    kept: dict[str, object] = {}
    for obj in objects:
        key = key_string([dump_value(f, raw_value(obj, f), keymaps) for f in spec.key_fields])
        (kept if str(obj.pk) in retired_pks else active)[key] = obj
    keymaps[spec.model] = {obj.pk: key for key, obj in (*kept.items(), *active.items())}
    return active, kept


def retirable(model) -> bool:
    try:
        flag = model._meta.get_field(RETIRE_FIELD)
    except FieldDoesNotExist:
        return False
    return isinstance(flag, models.BooleanField) and flag.concrete


def member_data(obj, retired: dict) -> list[str]:
    """What outside the promoted configuration refers to `obj` ("2 member offers", ...):
    the rows its delete would take with it or change."""
    found = []
    for rel in obj._meta.related_objects:
        model = rel.related_model
        query = model._base_manager.filter(**{rel.field.name: obj})
        if promotion.is_promotable(model):
            ids = retired.get(model._meta.label)
            if not ids:
                continue  # promoted rows follow the snapshot themselves
            query = query.filter(pk__in=ids)
        count = query.count()
        if count:
            name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
            found.append(f"{count} {name}")
    return found


def save_row(obj) -> None:
    """Write one row (a seam: the fault-injection test breaks the deploy here)."""
    obj.save()


def delete_row(obj) -> None:
    obj.delete()


def _retire(environment, label: str, obj, refs: list[str], release) -> None:
    setattr(obj, RETIRE_FIELD, False)
    save_row(obj)
    RetiredRow._base_manager.create(
        environment=environment,
        label=label,
        object_id=str(obj.pk),
        retired_by=release,
        reason="Referred to by " + ", ".join(refs),
    )


def production_notes(*, environment: Environment, entries: list[dict]) -> list[dict]:
    """Say in the diff what a deploy to `environment` does with rows member data refers to:
    a removed one is retired (kept, inactive), a retired one whose key returns is restored."""
    if not any(e["change"] in ("removed", "added") for e in entries):
        return entries
    retired = retired_ids(environment)
    keymaps: dict = {}
    rows = {}
    for spec in specs():
        rows[spec.label] = _rows(spec, environment, keymaps, retired)
    for entry in entries:
        if entry["label"] not in rows:
            continue
        active, kept = rows[entry["label"]]
        if entry["change"] == "removed" and entry["key"] in active:
            obj = active[entry["key"]]
            refs = member_data(obj, retired)
            if refs and retirable(type(obj)):
                entry["note"] = (
                    "Kept in production as inactive (retired), not deleted: member data "
                    f"refers to it ({', '.join(refs)}). Members no longer see it; a release "
                    "or rollback that brings it back restores it with that history."
                )
            elif refs:
                entry["note"] = (
                    "Removing it in production deletes or unlinks what refers to it: "
                    f"{', '.join(refs)}."
                )
        elif entry["change"] == "added" and entry["key"] in kept:
            entry["note"] = (
                "Restores the row retired earlier in production, with the member data that "
                "refers to it."
            )
    return entries


def apply_snapshot(
    *, environment: Environment, snapshot: dict, release=None
) -> list[AppliedChange]:
    """Rewrite the environment's registered configuration to equal the snapshot.

    Models absent from the snapshot (registered after it was taken) are left alone. A row
    the snapshot drops but member data refers to is retired instead of deleted (when its
    model has an `is_active` flag), and restored when a later snapshot has its key again.
    Must run inside the caller's transaction: a failure part-way leaves nothing behind.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("apply_snapshot must run inside transaction.atomic()")
    wanted = snapshot.get("models", {})
    ordered = [s for s in specs() if s.label in wanted]
    dump_maps: dict = {}  # model -> {pk: key}, to read the rows that are there now
    retired = retired_ids(environment)
    current, kept = {}, {}
    for spec in ordered:
        current[spec.label], kept[spec.label] = _rows(spec, environment, dump_maps, retired)
    changes: list[AppliedChange] = []

    # Removals first, dependants before what they depend on, so that a unique value
    # freed by a removed row can be taken by a row of the snapshot.
    for spec in reversed(ordered):
        for key, obj in list(current[spec.label].items()):
            if key in wanted[spec.label]:
                continue
            refs = member_data(obj, retired) if retirable(spec.model) else []
            if refs:
                _retire(environment, spec.label, obj, refs, release)
                retired.setdefault(spec.label, []).append(str(obj.pk))
                kept[spec.label][key] = obj
                changes.append(AppliedChange(spec.label, key, "retired", obj, [RETIRE_FIELD]))
            else:
                changes.append(AppliedChange(spec.label, key, "removed", obj))
                delete_row(obj)
            del current[spec.label][key]

    load_maps: dict = {}  # model -> {key: pk} in this environment, for foreign keys
    for spec in ordered:
        rows = current[spec.label]
        for key, values in wanted[spec.label].items():
            obj = rows.get(key)
            if obj is None and key in kept[spec.label]:
                # Its key is back (a rollback, say): the retired row returns, and with it
                # the member data that refers to it.
                obj = kept[spec.label].pop(key)
                RetiredRow._base_manager.filter(
                    environment=environment, label=spec.label, object_id=str(obj.pk)
                ).delete()
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
                kind = "changed" if key in rows else "restored"
            if changed or kind == "restored":
                for f in spec.fields:
                    if f.name in changed:
                        setattr(obj, f.attname, load_value(f, values.get(f.name), load_maps))
                save_row(obj)
                rows[key] = obj
                changes.append(AppliedChange(spec.label, key, kind, obj, changed))
        load_maps[spec.model] = {key: obj.pk for key, obj in rows.items()}
        dump_maps[spec.model] = {
            obj.pk: key for key, obj in (*kept[spec.label].items(), *rows.items())
        }

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
