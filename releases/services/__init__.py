"""Every write about releases goes through these services."""

from releases.services.cancel import release_cancel
from releases.services.common import ReleaseRefused, policy_for, production_of, staging_of
from releases.services.create import ensure_current, release_create, release_refresh
from releases.services.deploy import release_deploy, release_schedule, releases_due, window_refusal
from releases.services.emergency import production_emergency_change
from releases.services.rollback import release_rollback
from releases.services.signoff import missing_roles, release_sign, release_signoffs_recheck
from releases.services.watch import release_watch_check, release_watch_decide, releases_watching

__all__ = [
    "ReleaseRefused",
    "ensure_current",
    "missing_roles",
    "policy_for",
    "production_emergency_change",
    "production_of",
    "release_cancel",
    "release_create",
    "release_deploy",
    "release_refresh",
    "release_rollback",
    "release_schedule",
    "release_sign",
    "release_signoffs_recheck",
    "release_watch_check",
    "release_watch_decide",
    "releases_due",
    "releases_watching",
    "staging_of",
    "window_refusal",
]
