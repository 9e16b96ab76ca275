"""Field-level differences between two snapshots, in words a non-engineer can read."""

from __future__ import annotations

import json

from django.db import models

from institutions.fields import EncryptedTextField
from releases.snapshot import DIGEST, Spec, comparable, specs

#: Fields that name a row for people, in order of preference.
TITLE_FIELDS = ("display_name", "name", "title", "label", "slug", "key", "code")


def _key_display(key: str) -> str:
    values = json.loads(key)
    return " · ".join(_plain(v) for v in values)


def _plain(value) -> str:
    if isinstance(value, str) and value.startswith("["):
        try:
            return _key_display(value)
        except ValueError:
            return value
    return str(value)


def display_value(field, value) -> str:
    """A value as a person would say it."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(field, EncryptedTextField):
        return "(secret value)"
    if isinstance(value, dict) and DIGEST in value:
        return f"{value.get('name', 'file')} (content {value[DIGEST][:10]}…)"
    if field.is_relation:
        if isinstance(value, list):
            return ", ".join(_plain(v) for v in value)
        return _plain(value)
    if isinstance(field, models.BooleanField):
        return "Yes" if value else "No"
    if field.choices:
        labels = {str(k): str(v) for k, v in field.flatchoices}
        return labels.get(str(value), str(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _object_display(spec: Spec, key: str, row: dict) -> str:
    names = {f.name for f in spec.fields}
    for name in TITLE_FIELDS:
        if name in names and row.get(name):
            title = str(row[name])
            key_text = _key_display(key)
            return title if not key_text or key_text == title else f"{title} ({key_text})"
    return _key_display(key) or spec.verbose_name


def diff_snapshots(before: dict, after: dict) -> list[dict]:
    """Added, changed and removed rows of `after` against `before`, field by field.

    Only models present in `after` are compared (a snapshot is the whole truth for the
    models it holds).
    """
    entries: list[dict] = []
    before_models = before.get("models", {})
    for spec in specs():
        if spec.label not in after.get("models", {}):
            continue
        new = after["models"][spec.label]
        old = before_models.get(spec.label, {})
        all_fields = (*spec.fields, *spec.m2m)
        for key in sorted(set(old) | set(new)):
            if key in new and key in old:
                change = "changed"
                fields = [
                    f
                    for f in all_fields
                    if comparable(old[key].get(f.name)) != comparable(new[key].get(f.name))
                ]
                if not fields:
                    continue
            elif key in new:
                change = "added"
                fields = [f for f in all_fields if new[key].get(f.name) not in (None, "", [])]
            else:
                change = "removed"
                fields = [f for f in all_fields if old[key].get(f.name) not in (None, "", [])]
            row = new.get(key) or old.get(key)
            entries.append(
                {
                    "label": spec.label,
                    "model": spec.verbose_name,
                    "key": key,
                    "object": _object_display(spec, key, row),
                    "change": change,
                    "fields": [
                        {
                            "field": f.name,
                            "label": str(f.verbose_name).capitalize(),
                            "before": display_value(f, old.get(key, {}).get(f.name)),
                            "after": display_value(f, new.get(key, {}).get(f.name)),
                        }
                        for f in fields
                    ],
                }
            )
    return entries


def summarize(entries: list[dict]) -> str:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for entry in entries:
        counts[entry["change"]] += 1
    return ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "no changes"
