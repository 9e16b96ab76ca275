"""Recorded sales (the comparables of the built-in estimator), imported in bulk by external id."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from homes.models import Sale
from homes.services.bulk import fast_bulk_update
from homes.services.sync import ConcurrentChange
from institutions.models import AuditEntry
from institutions.services import audit_record
from institutions.services.batch import RowErrors

MAX_BATCH = 1000
SALE_FIELDS = (
    "address", "price", "sale_date", "latitude", "longitude", "living_sqft", "lot_sqft",
    "bedrooms", "bathrooms", "year_built", "grade", "condition", "view", "waterfront", "floors",
    "yr_renovated", "sqft_basement", "sqft_living15", "sqft_lot15", "zipcode",
)  # fmt: skip


def sales_import(*, environment, rows: list[dict], actor=None, actor_label: str = "") -> dict:
    """Create or update recorded sales by external id; refuse the batch when a row is bad.

    The estimator notices new comparables by itself (it is keyed by the sales' content).
    Returns counts: created, updated, unchanged.
    """
    if len(rows) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} sales per batch.")
    sales_check(rows=dict(enumerate(rows))).raise_if_any(total=len(rows))
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _import(environment, rows, actor, actor_label)
        except IntegrityError as error:
            if attempt == 2:
                raise ConcurrentChange(str(error)) from error
    raise AssertionError("unreachable")


def sales_check(*, rows: dict[int, dict], unchecked=None) -> RowErrors:
    """A sale repeated in the batch (`unchecked` rows, bad on their own, count too)."""
    errors = RowErrors()
    seen: dict[str, int] = {}
    for index, row in sorted({**(unchecked or {}), **rows}.items()):
        external_id = row.get("external_id")
        if not isinstance(external_id, str):
            continue
        if external_id in seen:
            errors.add(index, "external_id", f"Repeats row {seen[external_id]}.")
        seen.setdefault(external_id, index)
    return errors


def _import(environment, rows, actor, actor_label) -> dict:
    existing = {
        s.external_id: s
        for s in Sale.objects.filter(
            environment=environment, external_id__in=[r["external_id"] for r in rows]
        ).exclude(external_id="")
    }
    new, changed, unchanged = [], [], 0
    for row in rows:
        sale = existing.get(row["external_id"])
        if sale is None:
            new.append(
                Sale(
                    environment=environment,
                    external_id=row["external_id"],
                    **{name: row[name] for name in SALE_FIELDS if name in row},
                )
            )
            continue
        names = [n for n in SALE_FIELDS if n in row and getattr(sale, n) != row[n]]
        for name in names:
            setattr(sale, name, row[name])
        if names:
            changed.append(sale)
        else:
            unchanged += 1
    Sale.objects.bulk_create(new, batch_size=MAX_BATCH)
    fast_bulk_update(changed, list(SALE_FIELDS))
    counts = {"created": len(new), "updated": len(changed), "unchanged": unchanged}
    if new or changed:
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            object_type="homes.Sale",
            object_repr=f"{len(rows)} recorded sales imported",
            changes={k: {"before": None, "after": v} for k, v in counts.items()},
        )
    return counts
