"""How a production row becomes a staging row.

Every field of a copied model gets a rule: an explicit one from its `CopySpec`, else one
chosen by the field's type and name. So a field added to a copied model later is handled
without a change here: a number, flag or choice is copied, a money amount perturbed, a
date moved, an email, phone, name, street or external id replaced, and any other free text,
JSON, file or secret is not copied at all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from django.apps import apps
from django.db import models

from institutions import promotion
from institutions.fields import EncryptedTextField
from institutions.models import Environment
from releases.staging_data import bulk
from releases.staging_data.pseudonyms import Pseudonyms, perturb

CHUNK = 2000
MONEY_SPREAD = Decimal("0.05")  # values and balances move by 1% to 5%
AREA_FIELDS = {"city", "state", "county", "country", "postal_code", "zipcode", "zip_code", "zip"}
FIRST_NAME_FIELDS = {"first_name", "given_name", "firstname"}
LAST_NAME_FIELDS = {"last_name", "family_name", "surname", "lastname"}


class Rule(StrEnum):
    KEEP = "keep"  # numbers, flags, choices, moments, coarse place names
    BLANK = "blank"  # free text, JSON, files, secrets: never copied
    ENVIRONMENT = "environment"
    FOREIGN_KEY = "foreign_key"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    EMAIL = "email"
    PHONE = "phone"
    STREET = "street"
    EXTERNAL_ID = "external_id"
    UUID = "uuid"
    MONEY = "money"  # x the row's factor, rounded as it was
    LATITUDE = "latitude"
    LONGITUDE = "longitude"
    DATE = "date"  # moved 1-30 days back, the same for a row and its group


@dataclass(frozen=True)
class CopySpec:
    """A model copied from production into staging, and what is special about it."""

    label: str
    # The foreign key to the row this one belongs to (a lien's property): both share one
    # money factor, one date shift and one jitter, so a home's figures stay consistent.
    group: str | None = None
    own_spread: Decimal = Decimal(0)  # extra money noise of the row on top of its group's
    rules: dict[str, Rule] = field(default_factory=dict)
    # Restores the model's own invariants after the noise, on the row as {field name: value}.
    fix: Callable[[dict], None] | None = None

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)

    @property
    def group_label(self) -> str:
        return self.model._meta.get_field(self.group).related_model._meta.label


@dataclass(frozen=True)
class Noise:
    factor: Decimal
    shift: dt.timedelta
    jitter: tuple[float, float]


def _name(f: models.Field) -> str:
    return f.name.lower()


def classify(f: models.Field, spec: CopySpec | None = None) -> Rule:
    """The rule for one field: the spec's, else by type and name (unknown text: BLANK)."""
    if spec is not None and f.name in spec.rules:
        return spec.rules[f.name]
    if f.is_relation:
        return Rule.ENVIRONMENT if f.related_model is Environment else Rule.FOREIGN_KEY
    if isinstance(f, EncryptedTextField | models.BinaryField | models.FileField):
        return Rule.BLANK
    if isinstance(f, models.GenericIPAddressField):
        return Rule.BLANK
    name = _name(f)
    if isinstance(f, models.EmailField) or (isinstance(f, models.CharField) and "email" in name):
        return Rule.EMAIL
    if f.choices and not isinstance(f, models.JSONField):
        return Rule.KEEP
    if isinstance(f, models.CharField | models.TextField):
        if "phone" in name or "mobile" in name or name in {"fax", "tel", "telephone"}:
            return Rule.PHONE
        if name in FIRST_NAME_FIELDS:
            return Rule.FIRST_NAME
        if name in LAST_NAME_FIELDS:
            return Rule.LAST_NAME
        if name == "external_id" or name.endswith("_external_id"):
            return Rule.EXTERNAL_ID
        if "street" in name or "address" in name:
            return Rule.STREET
        if name in AREA_FIELDS:
            return Rule.KEEP
        return Rule.BLANK
    if isinstance(f, models.JSONField):
        return Rule.BLANK
    if isinstance(f, models.UUIDField):
        return Rule.UUID
    if isinstance(f, models.DecimalField) and f.decimal_places == 2:
        return Rule.MONEY  # a count with two decimals (a home's bathrooms) needs a KEEP rule
    if isinstance(f, models.FloatField | models.DecimalField) and name in {"latitude", "lat"}:
        return Rule.LATITUDE
    if isinstance(f, models.FloatField | models.DecimalField) and name in {
        "longitude",
        "lon",
        "lng",
    }:
        return Rule.LONGITUDE
    if isinstance(f, models.DateField) and not isinstance(f, models.DateTimeField):
        return Rule.DATE
    return Rule.KEEP


def plan(spec: CopySpec) -> list[tuple[models.Field, Rule]]:
    return [(f, classify(f, spec)) for f in spec.model._meta.concrete_fields if not f.primary_key]


def _blank(f: models.Field):
    if f.null:
        return None
    if f.has_default():
        return f.get_default()
    return "" if not isinstance(f, models.JSONField) else {}


def _is_tenant_owned(model) -> bool:
    return any(
        f.is_relation and f.related_model is Environment for f in model._meta.concrete_fields
    )


class Copier:
    """Copies the rows of the given specs, in order, from one environment to another."""

    def __init__(
        self,
        *,
        specs: list[CopySpec],
        source: Environment,
        target: Environment,
        pseudonyms: Pseudonyms,
        sink_domain: str,
    ):
        self.specs, self.source, self.target = specs, source, target
        self.p, self.sink_domain = pseudonyms, sink_domain
        self.ids: dict[str, dict[int, int]] = {}
        self._config_maps: dict[str, dict[int, int]] = {}
        self.copied: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.blanked: dict[str, list[str]] = {}
        self._noises: dict[str, Noise] = {}
        labels = {s.label for s in specs}
        self._mapped = {
            f.related_model._meta.label
            for s in specs
            for f in s.model._meta.concrete_fields
            if f.is_relation and f.related_model._meta.label in labels
        }

    # -- foreign keys --------------------------------------------------------------------
    def _config_map(self, model) -> dict[int, int]:
        """Production config row id -> the staging row with the same natural key."""
        label = model._meta.label
        if label not in self._config_maps:
            spec = next(p for p in promotion.registered() if p.label == label)
            key = [k for k in spec.natural_key if k != "environment"]
            rows = model._base_manager.values_list("pk", *key)
            staging = {tuple(r[1:]): r[0] for r in rows.filter(environment=self.target)}
            self._config_maps[label] = {
                r[0]: staging[tuple(r[1:])]
                for r in rows.filter(environment=self.source)
                if tuple(r[1:]) in staging
            }
        return self._config_maps[label]

    def _foreign_key(self, f: models.Field, value):
        """The staging id for a production reference; `...` when the row cannot be copied."""
        if value is None:
            return None
        model = f.related_model
        label = model._meta.label
        if label in self.ids:
            mapped = self.ids[label].get(value)
        elif promotion.is_promotable(model):
            mapped = self._config_map(model).get(value)
        elif _is_tenant_owned(model):
            mapped = None  # production-only rows (deliveries, tokens...) are never copied
        else:
            return value  # shared rows (users, institutions) are the same in both
        if mapped is None and not f.null:
            return ...
        return mapped

    # -- one row -------------------------------------------------------------------------
    def _transform(self, spec: CopySpec, steps, group_at: int | None, pk, values: list):
        """The staging values for a production row's `values` (in `steps` order), or None
        when the row cannot be copied."""
        own = f"{spec.label}:{pk}"
        group = own if group_at is None else f"{spec.group_label}:{values[group_at]}"
        noise, factor = self._noise(group), None
        for i, (f, rule) in enumerate(steps):
            if rule is Rule.KEEP:
                continue
            value = values[i]
            if rule is Rule.ENVIRONMENT:
                value = self.target.pk
            elif rule is Rule.FOREIGN_KEY:
                value = self._foreign_key(f, value)
                if value is ...:
                    return None
            elif rule is Rule.BLANK:
                value = _blank(f)
            elif value is None or value == "":
                continue
            elif rule is Rule.MONEY:
                if factor is None:
                    factor = noise.factor
                    if spec.own_spread:
                        factor *= self.p.factor(own, spec.own_spread, spec.own_spread / 4)
                value = perturb(Decimal(value), factor)
            elif rule is Rule.DATE:
                value = value - noise.shift
            elif rule is Rule.LATITUDE:
                value = value + type(value)(noise.jitter[0])
            elif rule is Rule.LONGITUDE:
                value = value + type(value)(noise.jitter[1])
            else:
                value = self._replace(rule, str(value))
                if isinstance(value, str) and f.max_length:
                    value = value[: f.max_length]  # a replacement may run longer
            values[i] = value
        if spec.fix:
            row = {f.name: v for (f, _), v in zip(steps, values, strict=True)}
            spec.fix(row)
            values = [row[f.name] for f, _ in steps]
        return values

    def _noise(self, group: str) -> Noise:
        """The money factor, date shift and jitter a row shares with its group (once each)."""
        noise = self._noises.get(group)
        if noise is None:
            noise = self._noises[group] = Noise(
                factor=self.p.factor(group, MONEY_SPREAD),
                shift=dt.timedelta(days=self.p.days_back(group)),
                jitter=self.p.jitter(group),
            )
        return noise

    def _replace(self, rule: Rule, value: str):
        p = self.p
        if rule is Rule.EMAIL:
            return p.email(value, self.sink_domain)
        if rule is Rule.FIRST_NAME:
            return p.first_name(value)
        if rule is Rule.LAST_NAME:
            return p.last_name(value)
        if rule is Rule.PHONE:
            return p.phone(value)
        if rule is Rule.STREET:
            return p.street(value)
        if rule is Rule.EXTERNAL_ID:
            return p.external_id(value)
        if rule is Rule.UUID:
            return p.uuid(value)
        raise ValueError(f"no replacement for rule {rule}")

    # -- a whole model -------------------------------------------------------------------
    def copy(self, spec: CopySpec, progress: Callable[[str, int, int], None]) -> int:
        """Copy every production row of the spec's model (read and written in chunks, as
        plain values: no model instances for millions of rows)."""
        model = spec.model
        steps = plan(spec)
        self.blanked[spec.label] = [f.name for f, rule in steps if rule is Rule.BLANK]
        group_at = None
        if spec.group:
            group_at = next(i for i, (f, _) in enumerate(steps) if f.name == spec.group)
        keep_ids = spec.label in self._mapped
        if keep_ids:
            self.ids[spec.label] = {}
        source = model._base_manager.filter(environment=self.source).order_by("pk")
        rows_of = source.values_list("pk", *(f.attname for f, _ in steps))
        names = [f.name for f, _ in steps]
        total, done, cursor = source.count(), 0, None
        progress(model._meta.verbose_name_plural, 0, total)
        while True:
            chunk = rows_of if cursor is None else rows_of.filter(pk__gt=cursor)
            rows = list(chunk[:CHUNK])
            if not rows:
                break
            cursor = rows[-1][0]
            made, olds = [], []
            for pk, *values in rows:
                new = self._transform(spec, steps, group_at, pk, values)
                if new is None:
                    self.skipped[spec.label] += 1
                else:
                    made.append(new)
                    olds.append(pk)
            ids = bulk.insert_values(model, names, made, need_ids=keep_ids)
            if keep_ids:
                self.ids[spec.label].update(zip(olds, ids, strict=True))
            self.copied[spec.label] += len(made)
            done += len(rows)
            progress(model._meta.verbose_name_plural, done, total)
        return self.copied[spec.label]


def real_values(specs: list[CopySpec], environment: Environment) -> dict[Rule, set[str]]:
    """The production values the replacements must never equal, by rule (names, streets)."""
    found: dict[Rule, set[str]] = defaultdict(set)
    for spec in specs:
        for f, rule in plan(spec):
            if rule in (Rule.FIRST_NAME, Rule.LAST_NAME, Rule.STREET):
                values = (
                    spec.model._base_manager.filter(environment=environment)
                    .exclude(**{f.attname: ""})
                    .values_list(f.attname, flat=True)
                    .distinct()
                )
                found[rule].update(v for v in values if v)
    return found
