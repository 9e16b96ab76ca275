"""After a deploy the oracle judges production; a fail alerts the signers and may roll back."""

from __future__ import annotations

import logging

from django.db import transaction

from institutions.models import Environment
from institutions.selectors import users_with_role
from releases import watch
from releases.models import Release
from releases.selectors import signoffs_of
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    mail_after_commit,
    now,
    policy_for,
    production_of,
    roles_of,
)
from releases.services.rollback import record_rollback_refusal, release_rollback

HISTORY_LIMIT = 100
logger = logging.getLogger(__name__)


def _notify(release: Release, subject: str, body: str, *, with_admins: bool = False) -> None:
    people = [s.signer for s in signoffs_of(release)]
    people.append(release.author)
    if with_admins:
        people.extend(users_with_role(release.environment.institution, "admin"))
    mail_after_commit(subject, body, people)


def release_watch_check(*, environment: Environment, release: Release) -> Release:
    """Judge production once; settle the watch on fail, or at the end of the period."""
    check_release_environment(environment, release)
    if release.watch_state != Release.Watch.WATCHING:
        return release
    institution = environment.institution
    policy = policy_for(institution)
    moment = now()
    verdict = watch.judge(
        environment=production_of(environment),
        rules=watch.rules_from_policy(policy),
        start=release.deployed_at,
        end=moment,
    )
    record = watch.verdict_record(verdict, at=moment)
    with transaction.atomic():
        release = Release._base_manager.select_for_update().get(pk=release.pk)
        if release.watch_state != Release.Watch.WATCHING:
            return release
        if release.state != Release.State.DEPLOYED:  # rolled back before rollbacks ended it
            release.watch_state = Release.Watch.ENDED
            release.save(update_fields=["watch_state"])
            return release
        release.watch_verdict = record
        release.watch_history = [*release.watch_history, record][-HISTORY_LIMIT:]
        ended = moment >= release.watch_until
        title = f"{institution}: release #{release.number}"
        if record["verdict"] == watch.FAIL:
            release.watch_state = Release.Watch.FAILED
            why = watch.explain(record)
            release.save()
            audit_release(release, what="watch failed", reason=why)
            rollback_note = (
                _auto_rollback(environment, release, why)
                if policy.auto_rollback
                else "Automatic rollback is off: roll it back from the admin if needed."
            )
            _notify(
                release,
                f"{title} failed its watch",
                f"The oracle failed release #{release.number} after deploy.\n\n"
                f"Why: {why}\n\n{rollback_note}\n",
            )
        elif ended and record["verdict"] == watch.PASS:
            release.watch_state = Release.Watch.PASSED
            release.save()
            audit_release(release, what="watch passed")
        elif ended:
            release.watch_state = Release.Watch.NEEDS_DECISION
            release.save()
            audit_release(release, what="watch inconclusive: a person must decide")
            _notify(
                release,
                f"{title} needs a decision",
                f"The watch of release #{release.number} ended inconclusive "
                f"({watch.explain(record)}).\nKeep it or roll it back from the admin.",
                with_admins=True,
            )
        else:
            release.save(update_fields=["watch_verdict", "watch_history"])
    release.refresh_from_db()
    return release


def _auto_rollback(environment: Environment, release: Release, why: str) -> str:
    """Roll back in a savepoint, so that whatever happens the failed watch and its alert
    stand; a rollback that cannot happen is recorded on the release. Says what happened."""
    try:
        with transaction.atomic():
            rollback = release_rollback(
                environment=environment,
                release=release,
                actor=None,
                reason=f"The oracle failed the watch: {why}",
            )
    except ReleaseRefused as refused:
        refusal = refused
    except Exception as error:  # the alert must still go out; the error is kept and logged
        logger.exception("automatic rollback of release %s failed", release.pk)
        refusal = ReleaseRefused(f"The rollback failed, production unchanged: {error}")
    else:
        return (
            "Production was rolled back to the previous configuration automatically "
            f"(release #{rollback.number})."
        )
    release.refresh_from_db()
    refusal.message = f"Automatic rollback did not happen: {refusal.message}"
    record_rollback_refusal(release, refusal, what="automatic rollback refused")
    return refusal.message + " Production still runs this release: decide by hand in the admin."


def release_watch_decide(
    *, environment: Environment, release: Release, keep: bool, comment: str, actor
) -> Release:
    """A person settles an inconclusive watch: keep the release, or roll it back."""
    check_release_environment(environment, release)
    if not roles_of(actor, environment.institution) & {"admin", "it"}:
        raise ReleaseRefused("Deciding a watch needs the IT or admin role.")
    if release.watch_state not in (Release.Watch.NEEDS_DECISION, Release.Watch.WATCHING):
        raise ReleaseRefused("This release's watch does not need a decision.")
    comment = comment.strip()
    if not comment:
        raise ReleaseRefused("Say why: a comment is required.")
    if not keep:
        return release_rollback(
            environment=environment, release=release, actor=actor, reason=comment
        )
    with transaction.atomic():
        release.watch_state = Release.Watch.ACCEPTED
        release.save(update_fields=["watch_state"])
        audit_release(release, what="watch accepted by a person", actor=actor, reason=comment)
    return release


def releases_watching() -> list[tuple[int, int]]:
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return list(
            Release._base_manager.filter(watch_state=Release.Watch.WATCHING).values_list(
                "environment_id", "pk"
            )
        )
