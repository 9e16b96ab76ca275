"""Canonical snapshots of promotable configuration: rows by natural key, never database ids.

A snapshot is {"format": 1, "models": {label: {key: {field: value}}}}, where `key` is the
JSON array of the row's natural-key values (environment left out: it is implicit). Values
are JSON: foreign keys to promotable rows become the target's key, files become their
content hash (the bytes are copied once to a content-addressed path), secrets become a
keyed digest plus the sealed (encrypted) value. Two environments with the same
configuration give the same hash, whatever their ids.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models

from institutions import promotion
from institutions.fields import EncryptedTextField, decrypt, encrypt
from institutions.models import Environment, TenantModel

FORMAT = 1
DIGEST = "$digest"
SEALED = "$sealed"
PROMOTED_FILES = "promoted"
_PROMOTED_RE = re.compile(rf"^{PROMOTED_FILES}/([0-9a-f]{{64}})/")


class SnapshotError(Exception):
    """The configuration cannot be snapshotted as registered (a modelling mistake)."""


@dataclass
class Spec:
    """How one registered model is read and written."""

    promotable: promotion.Promotable
    model: type[models.Model]
    key_fields: tuple[models.Field, ...]
    fields: tuple[models.Field, ...]
    m2m: tuple[models.ManyToManyField, ...]

    @property
    def label(self) -> str:
        return self.promotable.label

    @cached_property
    def verbose_name(self) -> str:
        return str(self.model._meta.verbose_name).capitalize()


def _is_environment_fk(field) -> bool:
    return field.is_relation and field.related_model is Environment


def _target_kind(field) -> str:
    """How a relation is written: by natural key (promotable), by id (global), or refused."""
    target = field.related_model
    if promotion.is_promotable(target):
        return "key"
    if issubclass(target, TenantModel) or any(
        _is_environment_fk(f) for f in target._meta.concrete_fields
    ):
        raise SnapshotError(
            f"{field.model._meta.label}.{field.name} refers to {target._meta.label}, tenant "
            "data that is not promoted: register it as promotable or exclude the field."
        )
    return "id"


def _build_spec(promotable: promotion.Promotable) -> Spec:
    model = promotable.model
    excluded = set(promotable.exclude)
    fields = []
    for field in model._meta.concrete_fields:
        if field.primary_key or _is_environment_fk(field) or field.name in excluded:
            continue
        # Timestamps kept by the database differ between environments by nature.
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if field.is_relation:
            _target_kind(field)
        fields.append(field)
    m2m = [f for f in model._meta.many_to_many if f.name not in excluded]
    for field in m2m:
        _target_kind(field)
    by_name = {f.name: f for f in fields}
    try:
        key_fields = tuple(by_name[n] for n in promotable.natural_key if n != "environment")
    except KeyError as exc:
        raise SnapshotError(f"{promotable.label}: natural key field {exc} is not promoted") from exc
    return Spec(promotable, model, key_fields, tuple(fields), tuple(m2m))


def specs() -> list[Spec]:
    """Registered models, each after the promotable models it refers to."""
    built = {p.label: _build_spec(p) for p in promotion.registered()}
    order: list[Spec] = []
    state: dict[str, int] = {}

    def visit(label: str) -> None:
        if state.get(label) == 2:
            return
        if state.get(label) == 1:
            return  # a cycle (or a self reference): written in registration order
        state[label] = 1
        spec = built[label]
        for field in (*spec.fields, *spec.m2m):
            if field.is_relation:
                target = field.related_model._meta.label
                if target in built and target != label:
                    visit(target)
        state[label] = 2
        order.append(spec)

    for label in built:
        visit(label)
    return order


# -- values ---------------------------------------------------------------------------------


def secret_digest(value: str) -> str:
    key = hashlib.sha256(("chimney-release-digest:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _file_value(field, name: str):
    if not name:
        return ""
    match = _PROMOTED_RE.match(name)
    if match:
        return {DIGEST: match.group(1), "name": name.rsplit("/", 1)[-1], "path": name}
    storage = field.storage
    if not storage.exists(name):
        return {DIGEST: "missing:" + name, "name": name.rsplit("/", 1)[-1], "path": name}
    with storage.open(name, "rb") as handle:
        content = handle.read()
    digest = hashlib.sha256(content).hexdigest()
    basename = name.rsplit("/", 1)[-1]
    # Content-addressed and never rewritten: a later upload in staging cannot change
    # what an earlier snapshot (or production) points to.
    path = f"{PROMOTED_FILES}/{digest}/{basename}"
    if not storage.exists(path):
        path = storage.save(path, ContentFile(content))
    return {DIGEST: digest, "name": basename, "path": path}


def dump_value(field, raw, keymaps: dict):
    """One field's value (as read from the row) in canonical JSON form."""
    if raw is None:
        return None
    if field.is_relation:
        if promotion.is_promotable(field.related_model):
            key = keymaps.get(field.related_model, {}).get(raw)
            if key is None:
                raise SnapshotError(
                    f"{field.model._meta.label}.{field.name} points to a "
                    f"{field.related_model._meta.label} outside this environment"
                )
            return key
        return raw
    if isinstance(field, models.FileField):
        return _file_value(field, raw)
    if isinstance(field, EncryptedTextField):
        return {DIGEST: secret_digest(raw), SEALED: encrypt(raw)} if raw else raw
    if isinstance(raw, Decimal | uuid.UUID):
        return str(raw)
    if isinstance(raw, dt.datetime | dt.date | dt.time):
        return raw.isoformat()
    if isinstance(raw, bytes | memoryview):
        return base64.b64encode(bytes(raw)).decode()
    return raw


def load_value(field, value, keymaps: dict):
    """The inverse of dump_value, for the environment the keymaps describe (key -> pk)."""
    if value is None:
        return None
    if field.is_relation:
        if promotion.is_promotable(field.related_model):
            pk = keymaps.get(field.related_model, {}).get(value)
            if pk is None:
                raise SnapshotError(
                    f"{field.model._meta.label}.{field.name}: no {field.related_model._meta.label}"
                    f" with key {value} in the target environment"
                )
            return pk
        return value
    if isinstance(field, models.FileField):
        return value["path"] if isinstance(value, dict) else value
    if isinstance(field, EncryptedTextField):
        return decrypt(value[SEALED]) if isinstance(value, dict) else value
    if isinstance(field, models.BinaryField):
        return base64.b64decode(value)
    return field.to_python(value)


def raw_value(obj, field):
    value = getattr(obj, field.attname)
    if isinstance(field, models.FileField):
        return value.name if value else ""
    return value


def key_string(values: list) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- capture --------------------------------------------------------------------------------


def retired_ids(environment: Environment) -> dict[str, list[str]]:
    """Ids of the environment's retired rows by label (see releases.models.RetiredRow)."""
    from releases.models import RetiredRow

    out: dict[str, list[str]] = {}
    for label, object_id in RetiredRow._base_manager.filter(environment=environment).values_list(
        "label", "object_id"
    ):
        out.setdefault(label, []).append(object_id)
    return out


def capture(environment: Environment) -> dict:
    """The environment's promotable configuration as a canonical snapshot.

    Retired rows (removed by a release but kept for the member data that refers to them)
    are not part of the configuration.
    """
    keymaps: dict = {}  # model -> {pk: key}
    out: dict[str, dict] = {}
    retired = retired_ids(environment)
    for spec in specs():
        names = [f.attname for f in spec.fields]
        query = spec.model._base_manager.filter(environment=environment)
        if spec.label in retired:
            query = query.exclude(pk__in=retired[spec.label])
        rows = list(query.order_by("pk").values_list("pk", *names))
        index = {f.attname: i + 1 for i, f in enumerate(spec.fields)}
        keys: dict = {}
        for row in rows:
            keys[row[0]] = key_string(
                [dump_value(f, row[index[f.attname]], keymaps) for f in spec.key_fields]
            )
        keymaps[spec.model] = keys
        table: dict[str, dict] = {}
        for row in rows:
            table[keys[row[0]]] = {
                f.name: dump_value(f, row[i], keymaps) for i, f in enumerate(spec.fields, 1)
            }
        for field in spec.m2m:
            _capture_m2m(spec, field, keys, table, keymaps)
        out[spec.label] = table
    return {"format": FORMAT, "models": out}


def _capture_m2m(spec, field, keys, table, keymaps) -> None:
    through = field.remote_field.through
    source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
    pairs = through._base_manager.filter(**{f"{source}__in": list(keys)}).values_list(
        f"{source}_id", f"{target}_id"
    )
    members: dict = {pk: [] for pk in keys}
    for src, dst in pairs:
        members[src].append(dump_value(field, dst, keymaps))
    for pk, values in members.items():
        table[keys[pk]][field.name] = sorted(values, key=key_string)


# -- comparing ------------------------------------------------------------------------------


def comparable(value):
    """What a value is compared by: files by content, secrets by digest."""
    if isinstance(value, dict) and DIGEST in value:
        return "sha256:" + value[DIGEST]
    return value


def comparable_models(snapshot: dict) -> dict:
    return {
        label: {key: {name: comparable(v) for name, v in row.items()} for key, row in table.items()}
        for label, table in snapshot.get("models", {}).items()
    }


def snapshot_hash(snapshot: dict) -> str:
    canonical = json.dumps(
        comparable_models(snapshot), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
