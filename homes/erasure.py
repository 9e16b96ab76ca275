"""Erasure hooks: apps above homes remove or anonymize what they hold about erased members.

homes cannot import them; each registers a hook in its AppConfig.ready(). A hook runs
inside the erasure's transaction and gets the environment and the erased members' ids.
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[..., None]
_hooks: list[Hook] = []


def register(hook: Hook) -> Hook:
    """Call `hook(environment=..., member_ids=[...])` whenever members are erased."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def run(*, environment, member_ids: list[int]) -> None:
    for hook in list(_hooks):
        hook(environment=environment, member_ids=member_ids)
