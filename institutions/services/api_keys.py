"""API keys: made (the key shown once), rotated with an overlap, revoked; checked per request."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from institutions.models import ApiKey, ApiScope, AuditEntry, Environment
from institutions.models.api import KEY_PREFIXES
from institutions.services.audit import audit_record, model_snapshot

DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)
MAX_ROTATION_OVERLAP = timedelta(days=30)
_KEY_RE = re.compile(r"^chk_(test|live)_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


class ApiKeyError(Exception):
    """The presented key is refused; the message says why (it never repeats the key)."""


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _new_secret(environment: Environment) -> tuple[str, str, str]:
    public_id = secrets.token_hex(8)
    raw = f"{KEY_PREFIXES[environment.kind]}{public_id}_{secrets.token_urlsafe(32)}"
    return public_id, raw, _hash(raw)


def _clean_scopes(scopes) -> list[str]:
    if not scopes:
        raise ValidationError({"scopes": "Give the key at least one scope."})
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}."})
    return sorted(set(scopes))


def api_key_create(
    *,
    environment: Environment,
    name: str,
    scopes,
    expires_at: datetime | None = None,
    actor=None,
    rotated_from: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; returns it with the full key, which is shown this once and never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the system that will use the key."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    public_id, raw, digest = _new_secret(environment)
    key = ApiKey(
        environment=environment,
        name=name[:100],
        public_id=public_id,
        key_hash=digest,
        scopes=_clean_scopes(scopes),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=expires_at,
        rotated_from=rotated_from,
    )
    with transaction.atomic():
        key.save()
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=actor,
            environment=environment,
            obj=key,
            after=model_snapshot(key),
            reason=f"Rotated from {rotated_from.display_prefix}" if rotated_from else "",
        )
    return key, raw


def api_key_rotate(
    *,
    environment: Environment,
    key: ApiKey,
    overlap: timedelta = DEFAULT_ROTATION_OVERLAP,
    actor=None,
) -> tuple[ApiKey, str]:
    """Replace a key: the new one has the same name, scopes and expiry; the old one keeps
    working for `overlap` (so the institution can switch its systems over), then expires."""
    if key.environment_id != environment.pk:
        raise ValueError("The key belongs to another environment.")
    if not key.is_active():
        raise ValidationError(f"Only an active key can be rotated (this one is {key.status}).")
    if overlap < timedelta(0) or overlap > MAX_ROTATION_OVERLAP:
        raise ValidationError({"overlap": "The overlap is between 0 and 30 days."})
    now = timezone.now()
    with transaction.atomic():
        new_key, raw = api_key_create(
            environment=environment,
            name=key.name,
            scopes=key.scopes,
            expires_at=key.expires_at,
            actor=actor,
            rotated_from=key,
        )
        before = model_snapshot(key)
        ends = now + overlap
        key.expires_at = ends if key.expires_at is None else min(key.expires_at, ends)
        key.save(update_fields=["expires_at"])
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            environment=environment,
            obj=key,
            before=before,
            after=model_snapshot(key),
            reason=(
                f"Rotated to {new_key.display_prefix}; "
                f"works until {key.expires_at:%Y-%m-%d %H:%M} UTC"
            ),
        )
    return new_key, raw


def api_key_revoke(
    *, environment: Environment, key: ApiKey, actor=None, reason: str = ""
) -> ApiKey:
    """Refuse the key from now on (at once, whatever its expiry)."""
    if key.environment_id != environment.pk:
        raise ValueError("The key belongs to another environment.")
    if key.revoked_at is not None:
        return key
    with transaction.atomic():
        before = model_snapshot(key)
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            environment=environment,
            obj=key,
            before=before,
            after=model_snapshot(key),
            reason=reason or "Revoked",
        )
    return key


def api_key_authenticate(*, environment: Environment, raw_key: str) -> ApiKey:
    """The active key of this environment that `raw_key` is, or ApiKeyError saying why not.

    A staging key on the production host (or the reverse), and any key of another
    institution, is refused: keys are looked up in the host's environment only.
    """
    match = _KEY_RE.match(raw_key or "")
    if match is None:
        raise ApiKeyError("The API key is malformed.")
    kind = Environment.Kind.STAGING if match.group(1) == "test" else Environment.Kind.PRODUCTION
    if kind != environment.kind:
        raise ApiKeyError(f"This is a {kind} key; this host is the {environment.kind} environment.")
    key = ApiKey.objects.filter(environment=environment, public_id=match.group(2)).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(raw_key)):
        raise ApiKeyError("The API key is not valid on this host.")
    key.environment = environment  # the host's, with its institution loaded
    now = timezone.now()
    if key.revoked_at is not None:
        raise ApiKeyError("The API key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise ApiKeyError("The API key has expired.")
    _touch(key, now)
    return key


def _touch(key: ApiKey, now: datetime) -> None:
    """Record use, writing at most once a minute per key (not a write per request)."""
    every = timedelta(seconds=settings.API_KEY_LAST_USED_SECONDS)
    if key.last_used_at is not None and now - key.last_used_at < every:
        return
    from django.db.models import Q

    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - every),
        environment=key.environment,
        pk=key.pk,
    ).update(last_used_at=now)
    key.last_used_at = now
