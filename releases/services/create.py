"""Making releases from staging, and superseding them when staging moves on."""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Max

from homes.valuation.providers import production_order
from institutions.models import Environment
from releases.apply import production_notes
from releases.diff import diff_snapshots, summarize
from releases.models import Release
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    policy_for,
    production_of,
    roles_of,
)
from releases.snapshot import capture, snapshot_hash


def next_number(environment: Environment) -> int:
    """The environment's next release number; the caller's transaction holds the lock.

    Numbers are MAX + 1: two releases made at once would both read the same MAX (and one
    would fail on the unique number), so they take turns on the environment's row.
    """
    Environment.objects.select_for_update().filter(pk=environment.pk).first()
    return _max_number(environment) + 1


def _max_number(environment: Environment) -> int:
    top = Release._base_manager.filter(environment=environment).aggregate(n=Max("number"))["n"]
    return top or 0


class NothingToRelease(ReleaseRefused):
    """Staging's configuration is the same as production's."""


def check_releasable(snapshot: dict) -> None:
    """Refuse a snapshot production cannot work with, though staging can.

    Staging may value its homes with the mock provider alone; production skips the mock, so
    that order would leave production valuing no home at all, its refreshes "done" with
    none valued and every member's value only getting older.
    """
    for values in snapshot.get("models", {}).get("homes.HomeSettings", {}).values():
        order = values.get("provider_order")
        if isinstance(order, list) and order and not production_order(order):
            raise ReleaseRefused(
                "Home settings: the provider_order "
                f"{json.dumps(order)} has no valuation provider production uses (production "
                "skips the mock): with it, production would value no home. In staging, add "
                'the providers production should use after the mock (e.g. ["mock", '
                '"comparable", "vendor"]: staging still values with the mock), then make the '
                "release again."
            )


def _supersede_open(environment: Environment, by: Release, reason: str) -> None:
    for old in Release._base_manager.select_for_update().filter(
        environment=environment, state__in=Release.OPEN_STATES
    ):
        if old.pk == by.pk:
            continue
        old.state = Release.State.SUPERSEDED
        old.superseded_by = by
        old.state_reason = reason.format(number=by.number)
        old.save(update_fields=["state", "superseded_by", "state_reason"])
        audit_release(old, what=f"superseded by release #{by.number}", reason=old.state_reason)


def release_create(
    *, environment: Environment, actor, title: str = "", notes: str = "", author=None
) -> Release:
    """Snapshot staging, diff it against production, and open it for sign-off."""
    if not environment.is_staging:
        raise ReleaseRefused("Releases are made from staging: switch to the staging environment.")
    institution = environment.institution
    if actor is not None and not roles_of(actor, institution):
        raise ReleaseRefused("Only staff of this institution can make a release.")
    staging = capture(environment)
    production_environment = production_of(environment)
    production = capture(production_environment)
    entries = diff_snapshots(production, staging)
    if not entries:
        raise NothingToRelease(
            "Nothing to release: staging's configuration is the same as production's."
        )
    check_releasable(staging)
    production_notes(environment=production_environment, entries=entries)
    policy = policy_for(institution)
    with transaction.atomic():
        release = Release._base_manager.create(
            environment=environment,
            number=next_number(environment),
            title=title[:200] or summarize(entries).capitalize(),
            notes=notes,
            author=author if author is not None else actor,
            required_roles=list(policy.required_roles),
            snapshot=staging,
            snapshot_hash=snapshot_hash(staging),
            base_snapshot=production,
            base_hash=snapshot_hash(production),
            diff=entries,
        )
        audit_release(
            release, what=f"created ({summarize(entries)})", actor=actor, changes={"diff": entries}
        )
        _supersede_open(
            environment,
            release,
            "Superseded by release #{number}: staging changed after this snapshot; "
            "sign-offs do not carry over.",
        )
    return release


def release_refresh(*, environment: Environment, release: Release) -> Release:
    """Supersede an open release whose snapshot no longer matches staging.

    Any change to staging after the snapshot makes a new release (same author, title and
    notes, fresh sign-offs); when staging now equals production there is nothing to replace
    it with and it is simply superseded.
    """
    check_release_environment(environment, release)
    if not release.is_open or release.kind != Release.Kind.PROMOTION:
        return release
    current = capture(environment)
    if snapshot_hash(current) == release.snapshot_hash:
        return release
    try:
        successor = release_create(
            environment=environment,
            actor=None,
            title=release.title,
            notes=release.notes,
            author=release.author,
        )
    except ReleaseRefused as refusal:
        with transaction.atomic():
            release.state = Release.State.SUPERSEDED
            release.state_reason = (
                "Staging changed after this snapshot and now matches production: "
                "there is nothing left to release."
                if isinstance(refusal, NothingToRelease)
                else f"Staging changed after this snapshot and cannot be released: {refusal}"
            )
            release.save(update_fields=["state", "state_reason"])
            audit_release(release, what="superseded", reason=release.state_reason)
        return release
    release.refresh_from_db()
    return successor if release.superseded_by_id == successor.pk else release


def ensure_current(environment: Environment, release: Release) -> None:
    """Refuse to act on a release that staging has moved past (superseding it first), and
    send one whose approvals no longer stand back to sign-off.

    Signing, scheduling and deploying all start here, so the sign-offs are judged again
    whenever the release is acted on: a signer who lost the role since no longer counts.
    """
    # Imported here: the sign-off module builds on this one.
    from releases.services.signoff import release_signoffs_recheck

    release_refresh(environment=environment, release=release)
    release.refresh_from_db()
    if release.state == Release.State.SUPERSEDED:
        successor = f" by release #{release.superseded_by.number}" if release.superseded_by else ""
        raise ReleaseRefused(
            f"Release #{release.number} is superseded{successor}: {release.state_reason}"
        )
    if release.kind == Release.Kind.PROMOTION:
        check_releasable(release.snapshot)  # one made before the check, say
    release_signoffs_recheck(release)
    release.refresh_from_db()
