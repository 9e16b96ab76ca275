"""The audit trail: who changed what, when, in which environment, before and after."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django_scopes import scopes_disabled

from institutions.fields import EncryptedTextField
from institutions.models import AuditEntry, Environment, Institution

REDACTED = "[redacted]"
_SECRET_HINTS = ("secret", "password", "token", "key_hash", "private")


def _is_secret(field) -> bool:
    return isinstance(field, EncryptedTextField) or any(h in field.name for h in _SECRET_HINTS)


def model_snapshot(obj) -> dict[str, Any]:
    """The object's field values as JSON-safe data, secrets redacted."""
    fields = serializers.serialize("python", [obj])[0]["fields"]
    secret_names = {f.name for f in obj._meta.concrete_fields if _is_secret(f)}
    data = {k: (REDACTED if k in secret_names else v) for k, v in fields.items()}
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _secrets_changed(previous, obj) -> dict[str, dict[str, str]]:
    """The secrets that differ between the stored row and `obj`, named but not shown.

    Snapshots redact every secret to the same text, so their diff drops a changed secret.
    It is named here, redacted, with nothing taken from either value.
    """
    return {
        field.name: {"before": REDACTED, "after": REDACTED}
        for field in obj._meta.concrete_fields
        if _is_secret(field) and getattr(previous, field.attname) != getattr(obj, field.attname)
    }


def _diff(before: dict | None, after: dict | None) -> dict[str, dict[str, Any]]:
    before, after = before or {}, after or {}
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def audit_record(
    *,
    action: str,
    actor=None,
    actor_label: str = "",
    environment: Environment | None = None,
    institution: Institution | None = None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict | None = None,
    after: dict | None = None,
    changes: dict | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry to the audit trail."""
    if institution is None and environment is not None:
        institution = environment.institution
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=actor_label[:150],
        institution=institution,
        environment=environment,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        changes=changes if changes is not None else _diff(before, after),
        reason=reason,
    )


def tenant_full_clean(obj, *, exclude: tuple[str, ...] = ()) -> None:
    """full_clean() of a tenant row whose environment the calling service has set.

    The environment is never left out of the validation: Django skips every unique
    constraint that includes an excluded field, so a second offer product of the same name
    or a lien at a taken position would reach the database and fail there (an
    IntegrityError, a server error) instead of an error naming the fields. The constraint
    queries run unscoped; they filter by the row's own environment.
    """
    with scopes_disabled():
        obj.full_clean(exclude=[name for name in exclude if name != "environment"] or None)


def audited_save(
    obj,
    *,
    actor,
    changes: dict[str, Any] | None = None,
    environment: Environment | None = None,
    institution: Institution | None = None,
    actor_label: str = "",
    reason: str = "",
    clean_exclude: tuple[str, ...] = (),
    related: dict[str, Iterable[Any]] | None = None,
):
    """Apply `changes` to `obj`, validate it, save it and audit before/after, atomically.

    "Before" is read from the table, not from `obj`: an admin form has already set the new
    values on the instance it passes in. Validation errors raise before anything is written.
    `related` sets many-to-many fields after the save, in the same audited change.
    """
    previous = type(obj)._base_manager.filter(pk=obj.pk).first() if obj.pk else None
    before = model_snapshot(previous) if previous is not None else None
    for name, value in (changes or {}).items():
        setattr(obj, name, value)
    tenant_full_clean(obj, exclude=clean_exclude)
    secrets_changed = _secrets_changed(previous, obj) if previous is not None else {}
    with transaction.atomic():
        obj.save()
        for name, values in (related or {}).items():
            # Before the after-snapshot, so the audit entry shows them.
            getattr(obj, name).set(values)
        audit_record(
            action=AuditEntry.Action.UPDATE if previous else AuditEntry.Action.CREATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            institution=institution,
            obj=obj,
            changes={**_diff(before, model_snapshot(obj)), **secrets_changed},
            reason=reason,
        )
    return obj


def tenant_object_save(*, environment: Environment, obj, actor, reason: str = ""):
    """Save a tenant-owned object in its environment and audit the change."""
    if obj.pk is not None and obj.environment_id not in (None, environment.pk):
        raise ValueError("The object belongs to another environment.")
    obj.environment = environment
    return audited_save(obj, actor=actor, environment=environment, reason=reason)


def tenant_object_delete(*, environment: Environment, obj, actor, reason: str = "") -> None:
    """Delete a tenant-owned object of this environment and audit it."""
    if obj.environment_id != environment.pk:
        raise ValueError("The object belongs to another environment.")
    with transaction.atomic():
        before = model_snapshot(obj)
        audit_record(
            action=AuditEntry.Action.DELETE,
            actor=actor,
            environment=environment,
            obj=obj,
            before=before,
            reason=reason,
        )
        obj.delete()
