"""Signals other apps may listen to (sent after the deploy's transaction commits)."""

from institutions import promotion

#: sent with environment=<production Environment>, labels=<frozenset of changed model
#: labels> and release=<Release> once a deploy or a rollback (itself a release) committed.
#: It is `institutions.promotion.promoted`, so that lower apps listen without importing
#: releases.
release_deployed = promotion.promoted
