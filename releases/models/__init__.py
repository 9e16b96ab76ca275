"""Releases: the institution's release policy and the releases with their sign-offs."""

from releases.models.policy import DeployWindow, FreezePeriod, ReleasePolicy
from releases.models.release import Release, SignOff

__all__ = ["DeployWindow", "FreezePeriod", "Release", "ReleasePolicy", "SignOff"]
