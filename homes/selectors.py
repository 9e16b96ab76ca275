"""Reads about homes, always scoped to one environment."""

from __future__ import annotations

from homes.models import HomeSettings


def home_settings(environment) -> HomeSettings:
    """The environment's settings, or the defaults (unsaved) when none were saved yet."""
    return HomeSettings.objects.filter(environment=environment).first() or HomeSettings(
        environment=environment
    )
