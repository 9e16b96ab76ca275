"""Registry of promotable configuration: each app registers its models in AppConfig.ready().

Releases (a higher app) read this registry to snapshot staging and apply it to production,
so a lower app never has to import releases.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.dispatch import Signal


@dataclass(frozen=True)
class Promotable:
    label: str  # "app_label.ModelName"
    natural_key: tuple[str, ...]  # fields that identify a row within its environment
    exclude: tuple[str, ...] = ()  # fields not promoted (e.g. runtime state)

    @property
    def model(self):
        return apps.get_model(self.label)


_registry: dict[str, Promotable] = {}

#: Sent after the transaction that rewrote an environment's promotable configuration
#: commits (a release's deploy or its rollback), with environment=<Environment> and
#: labels=<frozenset of the registered labels whose rows changed>. A release writes rows
#: with plain saves, past the apps' services: an app whose derived data depends on its
#: configuration (stored offer matches, say) listens here to bring it up to date. It lives
#: here, not in releases, because a lower app never imports a higher one.
promoted = Signal()


def register(label: str, *, natural_key: tuple[str, ...], exclude: tuple[str, ...] = ()) -> None:
    """Declare a model whose staging rows are promoted to production by release."""
    _registry[label] = Promotable(label, tuple(natural_key), tuple(exclude))


def registered() -> list[Promotable]:
    return list(_registry.values())


def is_promotable(model) -> bool:
    return model._meta.label in _registry
