"""Copy production's members and homes into staging with every personal detail replaced.

Names, emails, phones, street numbers and external ids are replaced deterministically
(keyed by staging's own secret, so a member keeps one staging identity across refreshes);
emails go to a sink domain. Values and balances move by 1-5% (a home's figures together,
so LTVs stay plausible), dates a few days back, coordinates by about a block. Free text
that no rule knows is not copied. Offer matches are not copied: they are recomputed from
staging's own offers, which a refresh never touches (nor any other configuration).
Deliveries, push subscriptions, login tokens, consents and events stay in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.db import transaction

from homes.models import Member
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record
from institutions.tenancy import environment_scope
from releases.services.common import ReleaseRefused, production_of
from releases.staging_data.common import (
    Progress,
    check_can_fill,
    homes_recompute,
    lock,
    member_data_clear,
    no_progress,
    sink_domain,
    staging_key,
)
from releases.staging_data.copying import Copier, CopySpec, Rule, real_values
from releases.staging_data.pseudonyms import Pseudonyms, street_key


def _keep_range(row: dict, low: str = "low", high: str = "high", value: str = "value") -> None:
    """low <= value <= high still holds after each was rounded on its own."""
    v = row[value]
    if v is None:
        return
    if row[low] is not None and row[low] > v:
        row[low] = v
    if row[high] is not None and row[high] < v:
        row[high] = v


def _property_range(row: dict) -> None:
    _keep_range(row, "value_low", "value_high")


#: What is copied, in order (a row's references are copied before it).
COPIED: list[CopySpec] = [
    CopySpec("homes.Member"),
    CopySpec(
        "homes.Property",
        # Bathrooms are a count in quarters (2.50), not money: copied as they are.
        rules={"valued_on": Rule.KEEP, "bathrooms": Rule.KEEP},
        fix=_property_range,
    ),
    CopySpec("homes.Lien", group="property", own_spread=Decimal("0.02")),
    CopySpec("homes.Valuation", group="property", rules={"as_of": Rule.KEEP}, fix=_keep_range),
    CopySpec(
        "homes.VendorValue",
        group="property",
        rules={"as_of": Rule.KEEP, "vendor": Rule.KEEP},
        fix=_keep_range,
    ),
    CopySpec("homes.Sale"),
    CopySpec("homes.MemberOffer", group="member"),
]


def copied_models() -> list:
    """Staging's member data: what a copy or a mock data set replaces."""
    return [spec.model for spec in COPIED]


@dataclass
class RefreshResult:
    copied: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    not_copied_fields: dict[str, list[str]] = field(default_factory=dict)
    recomputed: int = 0
    relinked: int = 0

    @property
    def members(self) -> int:
        return self.copied.get("homes.Member", 0)

    def summary(self) -> str:
        return ", ".join(
            f"{n:,} {apps.get_model(label)._meta.verbose_name_plural}"
            for label, n in self.copied.items()
        )

    def as_dict(self) -> dict:
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "not_copied_fields": self.not_copied_fields,
            "recomputed": self.recomputed,
            "relinked": self.relinked,
        }


def staging_refresh_from_production(
    *, environment: Environment, actor, progress: Progress | None = None
) -> RefreshResult:
    """Replace staging's members and homes with an anonymized copy of production's.

    One transaction: if anything fails, staging is left exactly as it was.
    """
    progress = progress or no_progress
    check_can_fill(environment, actor, "The anonymized copy of production")
    production = production_of(environment)
    if production.pk == environment.pk:  # pragma: no cover - an institution has both
        raise ReleaseRefused("Production cannot be copied onto itself.")
    if not Member._base_manager.filter(environment=production).exists():
        raise ReleaseRefused(
            "Production has no members yet: there is nothing to copy, and staging is left as it is."
        )
    real = real_values(COPIED, production)
    pseudonyms = Pseudonyms(
        staging_key(environment),
        avoid_names=frozenset(real[Rule.FIRST_NAME] | real[Rule.LAST_NAME]),
        avoid_streets=frozenset(filter(None, map(street_key, real[Rule.STREET]))),
    )
    copier = Copier(
        specs=COPIED,
        source=production,
        target=environment,
        pseudonyms=pseudonyms,
        sink_domain=sink_domain(),
    )
    result = RefreshResult()
    with environment_scope(environment), transaction.atomic():
        lock(environment)
        who = "" if actor else "staging refresh"
        relink = member_data_clear(
            environment, copied_models(), progress, actor=actor, actor_label=who
        )
        for spec in COPIED:
            copier.copy(spec, progress)
        result.relinked = relink()
        result.recomputed = homes_recompute(environment, progress)
        result.copied = dict(copier.copied)
        result.skipped = {k: v for k, v in copier.skipped.items() if v}
        result.not_copied_fields = {k: v for k, v in copier.blanked.items() if v}
        summary = result.summary()
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label=who,
            environment=environment,
            object_type="homes.Member",
            object_repr=f"Staging replaced by an anonymized copy of production: {summary}"[:200],
            changes=result.as_dict(),
        )
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label=who,
            environment=production,
            object_type="homes.Member",
            object_repr=f"Production copied into staging, anonymized: {summary}"[:200],
            changes={"copied": result.copied},
        )
    return result
