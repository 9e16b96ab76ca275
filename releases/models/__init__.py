"""Releases: the institution's release policy, the releases with their sign-offs, and the
staging data runs (mock data, anonymized copies of production)."""

from releases.models.policy import DeployWindow, FreezePeriod, ReleasePolicy
from releases.models.release import Release, RetiredRow, SignOff
from releases.models.staging import StagingDataJob, StagingDataKey

__all__ = [
    "DeployWindow",
    "FreezePeriod",
    "Release",
    "ReleasePolicy",
    "RetiredRow",
    "SignOff",
    "StagingDataJob",
    "StagingDataKey",
]
