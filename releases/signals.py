"""Signals other apps may listen to (sent after the deploy's transaction commits)."""

from django.dispatch import Signal

#: sent with environment=<production Environment>, release=<Release> once a deploy committed,
#: so that apps can drop caches of configuration that rows' own save signals do not cover.
release_deployed = Signal()
