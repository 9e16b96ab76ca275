"""Bulk upsert from an institution's systems: members with their homes and liens, by
external id, and recorded sales. Every row is checked first; one bad row refuses the
batch (each bad row named) and nothing is saved. Writes are bulk, and only rows whose
values change are written, so a repeated batch changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from homes.models import Lien, Member, Property
from homes.services.bulk import bulk_insert_rows, bulk_update_rows
from institutions.models import AuditEntry
from institutions.services import audit_record
from institutions.services.batch import RowErrors

log = logging.getLogger(__name__)

MAX_BATCH = 1000
#: How long the task a sync (or a large vendor upload) queues has to value or recompute its
#: homes before the sweep of homes.equity_tick does it instead (the homes are marked with
#: the data).
REFRESH_GRACE = timedelta(minutes=10)
MEMBER_FIELDS = ("email", "first_name", "last_name", "is_test")
PROPERTY_FIELDS = (
    "street", "city", "state", "postal_code", "latitude", "longitude", "bedrooms",
    "bathrooms", "living_sqft", "lot_sqft", "year_built", "owner_occupied", "purchase_date",
    "purchase_price",
)  # fmt: skip
#: A change to these makes a new estimate: the home is revalued.
VALUATION_INPUTS = frozenset(PROPERTY_FIELDS) - {
    "owner_occupied",
    "purchase_date",
    "purchase_price",
}
LIEN_FIELDS = (
    "kind", "original_amount", "rate", "term_months", "origination_date", "balance",
    "balance_as_of", "pmi_monthly",
)  # fmt: skip
LIEN_DEFAULTS = {"kind": "first_mortgage", "term_months": 360, "pmi_monthly": 0}


class ConcurrentChange(Exception):
    """Another request changed the same rows at the same moment, every time we tried."""


@dataclass
class UpsertResult:
    rows: list[dict]
    revalue_ids: list[int] = field(default_factory=list)
    recompute_ids: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)


def _text(value, *, lower: bool = False) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower() if lower else value.strip()


def members_check(*, environment, rows: dict[int, dict], unchecked=None) -> RowErrors:
    """What is wrong between the rows of a batch (by index; each row was checked on its own)
    and with the members stored: a repeated external id, email or home, or an email that
    another member still has once the batch is applied.

    An email is compared with what the batch leaves, not with what is stored before it: a
    stored member whose own row gives its email up (for another, or none) frees it for
    another row, so an address moving between members in one batch (to a new member, a
    swap, a chain) is accepted. A stored member not in the batch, or whose row leaves its
    email out, keeps it.

    `unchecked` rows (bad on their own, as sent) take part in the comparison between rows,
    so that a row repeating a bad one is named too; they are not compared with stored rows.
    """
    errors = RowErrors()
    members: dict[str, int] = {}
    emails: dict[str, int] = {}
    homes: dict[str, int] = {}
    everything = {**(unchecked or {}), **rows}
    for index, row in sorted(everything.items()):
        external_id = _text(row.get("external_id"))
        if external_id is not None:
            if external_id in members:
                errors.add(index, "external_id", f"Repeats row {members[external_id]}.")
            members.setdefault(external_id, index)
        email = _text(row.get("email"), lower=True)
        if email is not None:
            if email in emails:
                errors.add(index, "email", f"Repeats the email of row {emails[email]}.")
            emails.setdefault(email, index)
        properties = row.get("properties")
        for p, prop in enumerate(properties if isinstance(properties, list) else ()):
            home = _text(prop.get("external_id")) if isinstance(prop, dict) else None
            if home is None:
                continue
            if home in homes:
                errors.add(
                    index, f"properties.{p}.external_id", f"Repeats a home of row {homes[home]}."
                )
            homes.setdefault(home, index)
    checked = {row["email"]: i for i, row in rows.items() if row.get("email")}
    if checked:
        # The email each member of the batch ends with (None: none), where its row sends one.
        ends_with: dict[str, str | None] = {}
        for _, row in sorted(everything.items()):
            external_id = _text(row.get("external_id"))
            if external_id is not None and "email" in row:
                ends_with.setdefault(external_id, _text(row["email"], lower=True))
        # email <> '' lets the database use the partial unique index on lower(email).
        holders = (
            Member.objects.annotate(email_lower=Lower("email"))
            .filter(environment=environment, email_lower__in=list(checked))
            .exclude(email="")
        )
        for email, holder in holders.values_list("email_lower", "external_id"):
            index = checked[email]
            if holder == rows[index]["external_id"]:
                continue
            if holder in ends_with and ends_with[holder] != email:
                continue  # the holder's own row gives it up
            errors.add(
                index,
                "email",
                f"Is the email of another member ({holder or 'one without an external id'}).",
            )
    return errors


def member_bulk_upsert(
    *, environment, rows: list[dict], actor=None, actor_label: str = ""
) -> UpsertResult:
    """Create or update members (by external id), their homes (by external id) and, where
    given, replace a home's liens; refuse the whole batch when any row is bad.

    New and moved homes are revalued, homes with changed liens recomputed, by a task queued
    after commit. The homes are marked as waiting in the same transaction, so a task that
    cannot be queued (or is lost) loses nothing: properties_refresh_waiting does the work.
    """
    if len(rows) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} members per batch.")
    for attempt in range(3):
        try:
            with transaction.atomic():
                result = _upsert(environment, rows, actor, actor_label)
        except IntegrityError as error:
            # A concurrent batch created one of these members or homes first: read again.
            if attempt == 2:
                raise ConcurrentChange(str(error)) from error
            continue
        _refresh_later(environment, result)
        return result
    raise AssertionError("unreachable")


def _refresh_later(environment, result: UpsertResult) -> None:
    if not (result.revalue_ids or result.recompute_ids):
        return
    transaction.on_commit(
        lambda: _queue_refresh(environment.pk, result.revalue_ids, result.recompute_ids)
    )


def _queue_refresh(environment_id: int, revalue_ids: list[int], recompute_ids: list[int]):
    from homes.tasks import properties_sync

    try:
        properties_sync.delay(environment_id, revalue_ids, recompute_ids)
    except Exception:
        # The sync is committed and its homes are marked as waiting: the sweep does the work
        # after REFRESH_GRACE. The caller's answer must not say the sync failed.
        log.exception(
            "Could not queue properties_sync for environment %s (%d homes to value, %d to "
            "recompute); homes.equity_tick will do it.",
            environment_id,
            len(revalue_ids),
            len(recompute_ids),
        )


def _upsert(environment, rows, actor, actor_label) -> UpsertResult:
    members_check(environment=environment, rows=dict(enumerate(rows))).raise_if_any(total=len(rows))
    existing: dict[str, list] = {
        row[0]: list(row[1:])
        for row in Member.objects.filter(
            environment=environment, external_id__in=[r["external_id"] for r in rows]
        )
        .exclude(external_id="")  # the partial unique index's condition: it is used
        .values_list("external_id", "pk", *MEMBER_FIELDS)
    }
    # An email one member of the batch gives up may be taken by another row (a household's
    # address moving to the spouse, two members swapping, a chain). The unique index on
    # lower(email) is checked row by row, on SQLite and PostgreSQL alike, so those givers are
    # parked on "" (outside the index) before anyone takes their email; they get their new
    # one with their other changes below.
    taken = {row["email"].lower() for row in rows if row.get("email")}
    parked = [
        stored[0]
        for row in rows
        if "email" in row
        and (stored := existing.get(row["external_id"])) is not None
        and (given_up := stored[1].lower()) in taken
        and given_up != (row["email"] or "").lower()
    ]
    if parked:
        Member.objects.filter(environment=environment, pk__in=parked).update(email="")

    now = timezone.now()
    statuses: list[str] = []
    new_rows: list[dict] = []
    changed: dict[int, list] = {}  # pk -> [pk, *MEMBER_FIELDS]
    for row in rows:
        stored = existing.get(row["external_id"])
        if stored is None:
            new_rows.append(
                {
                    "environment_id": environment.pk,
                    "external_id": row["external_id"],
                    **{name: row[name] for name in MEMBER_FIELDS if name in row},
                }
            )
            statuses.append("created")
            continue
        differs = False
        for position, name in enumerate(MEMBER_FIELDS, start=1):
            if name in row and stored[position] != row[name]:
                stored[position] = row[name]
                differs = True
        if differs:
            changed[stored[0]] = stored
        statuses.append("updated" if differs else "unchanged")
    new_ids = iter(bulk_insert_rows(Member, new_rows))
    member_ids = [
        next(new_ids) if status == "created" else existing[row["external_id"]][0]
        for row, status in zip(rows, statuses, strict=True)
    ]

    homes = _HomesWriter(environment, now, rows)
    for index, row in enumerate(rows):
        # diff() stages the row's homes: it runs for every row, changed or not.
        if homes.diff(member_ids[index], row.get("properties") or ()) and (
            statuses[index] == "unchanged"
        ):
            statuses[index] = "updated"
            changed[member_ids[index]] = existing[row["external_id"]]
    bulk_update_rows(
        Member,
        [*MEMBER_FIELDS, "updated_at"],
        [(*stored[1:], now, stored[0]) for stored in changed.values()],
    )
    homes.write()

    result = UpsertResult(
        rows=[
            {"index": i, "external_id": row["external_id"], "id": pk, "status": status}
            for i, (row, pk, status) in enumerate(zip(rows, member_ids, statuses, strict=True))
        ],
        revalue_ids=sorted(homes.revalue),
        recompute_ids=sorted(homes.recompute - homes.revalue),
    )
    if result.count("unchanged") < len(rows):
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            object_type="homes.Member",
            object_repr=f"{len(rows)} members synced",
            changes={
                "created": {"before": None, "after": result.count("created")},
                "updated": {"before": None, "after": result.count("updated")},
                "homes_changed": {"before": None, "after": len(homes.changed_ids)},
            },
        )
    return result


class _HomesWriter:
    """Diffs the homes and liens of a batch against what is stored (read once, as plain
    values), then writes the differences in a few bulk statements."""

    def __init__(self, environment, now, rows):
        self.environment = environment
        self.now = now
        refs = [p["external_id"] for row in rows for p in row.get("properties") or ()]
        # external id -> [pk, member_id, *PROPERTY_FIELDS]
        self.existing: dict[str, list] = {}
        if refs:
            self.existing = {
                row[0]: list(row[1:])
                for row in Property.objects.filter(environment=environment, external_id__in=refs)
                .exclude(external_id="")
                .values_list("external_id", "pk", "member_id", *PROPERTY_FIELDS)
            }
        with_liens = [
            self.existing[p["external_id"]][0]
            for row in rows
            for p in row.get("properties") or ()
            if "liens" in p and p["external_id"] in self.existing
        ]
        # property id -> position -> [pk, *LIEN_FIELDS]
        self.liens: dict[int, dict[int, list]] = defaultdict(dict)
        if with_liens:
            for row in Lien.objects.filter(
                environment=environment, property_id__in=with_liens
            ).values_list("property_id", "position", "pk", *LIEN_FIELDS):
                self.liens[row[0]][row[1]] = list(row[2:])
        self.new_properties: list[dict] = []
        self.new_property_liens: list[list[dict]] = []
        self.changed_properties: list[list] = []
        self.new_liens: list[dict] = []
        self.changed_liens: list[list] = []
        self.deleted_liens: list[int] = []
        self.previous_owners: set[int] = set()
        self.revalue: set[int] = set()
        self.recompute: set[int] = set()
        self.changed_ids: set[int] = set()

    def diff(self, member_id: int, properties) -> bool:
        """Stage the member's homes; True when any of them is new or changes."""
        changed = False
        for data in properties:
            stored = self.existing.get(data["external_id"])
            if stored is None:
                self.new_properties.append(
                    {
                        "environment_id": self.environment.pk,
                        "external_id": data["external_id"],
                        "member_id": member_id,
                        **{name: data[name] for name in PROPERTY_FIELDS if name in data},
                    }
                )
                self.new_property_liens.append(data.get("liens") or [])
                changed = True
                continue
            pk = stored[0]
            names = set()
            for position, name in enumerate(PROPERTY_FIELDS, start=2):
                if name in data and stored[position] != data[name]:
                    stored[position] = data[name]
                    names.add(name)
            moved = stored[1] != member_id
            if moved:
                if stored[1] is not None:
                    self.previous_owners.add(stored[1])
                stored[1] = member_id
            liens_changed = "liens" in data and self._diff_liens(pk, data["liens"])
            if names or moved:
                self.changed_properties.append(stored)
            if names & VALUATION_INPUTS:
                self.revalue.add(pk)
            if names or moved or liens_changed:
                self.recompute.add(pk)
                self.changed_ids.add(pk)
                changed = True
        return changed

    def _diff_liens(self, property_id: int, wanted: list[dict]) -> bool:
        current = self.liens.get(property_id, {})
        changed = False
        for data in wanted:
            values = {**LIEN_DEFAULTS, **data}
            stored = current.get(data["position"])
            if stored is None:
                self.new_liens.append({"property_id": property_id, **values})
                changed = True
                continue
            differs = False
            for position, name in enumerate(LIEN_FIELDS, start=1):
                if stored[position] != values[name]:
                    stored[position] = values[name]
                    differs = True
            if differs:
                self.changed_liens.append(stored)
                changed = True
        positions = {data["position"] for data in wanted}
        for position, stored in current.items():
            if position not in positions:
                self.deleted_liens.append(stored[0])
                changed = True
        return changed

    def write(self) -> None:
        env = self.environment.pk
        # Revalued or recomputed after commit: marked now, with the data (see REFRESH_GRACE).
        if self.revalue:
            Property.objects.filter(
                environment=self.environment, pk__in=sorted(self.revalue)
            ).update(valuation_requested_at=self.now)
        if recompute_only := sorted(self.recompute - self.revalue):
            Property.objects.filter(environment=self.environment, pk__in=recompute_only).update(
                recompute_requested_at=self.now
            )
        new_ids = bulk_insert_rows(
            Property, [{**home, "valuation_requested_at": self.now} for home in self.new_properties]
        )
        for pk, liens in zip(new_ids, self.new_property_liens, strict=True):
            self.revalue.add(pk)
            self.changed_ids.add(pk)
            self.new_liens.extend({"property_id": pk, **LIEN_DEFAULTS, **lien} for lien in liens)
        bulk_update_rows(
            Property,
            ["member", *PROPERTY_FIELDS],
            [(*stored[1:], stored[0]) for stored in self.changed_properties],
        )
        if self.deleted_liens:
            Lien.objects.filter(environment=self.environment, pk__in=self.deleted_liens).delete()
        bulk_insert_rows(Lien, [{"environment_id": env, **lien} for lien in self.new_liens])
        bulk_update_rows(
            Lien, list(LIEN_FIELDS), [(*stored[1:], stored[0]) for stored in self.changed_liens]
        )
        if self.previous_owners:
            Member.objects.filter(environment=self.environment, pk__in=self.previous_owners).update(
                updated_at=self.now
            )


REFRESH_BATCH = 1000


def properties_refresh_waiting(*, environment) -> dict[str, int]:
    """Revalue and recompute the homes a sync (or a large vendor upload) marked more than
    REFRESH_GRACE ago whose task has not done it (the broker was down, the task was lost);
    homes.equity_tick calls this. Then the upload's refresh run that never went, with
    nothing left waiting, is closed (it would show pending for ever).
    """
    from homes.services.refresh import refresh_waiting_close

    cutoff = timezone.now() - REFRESH_GRACE
    homes = Property.objects.filter(environment=environment).order_by("pk")
    revalue = list(homes.filter(valuation_requested_at__lt=cutoff).values_list("pk", flat=True))
    marked = set(revalue)
    recompute = [
        pk
        for pk in homes.filter(recompute_requested_at__lt=cutoff).values_list("pk", flat=True)
        if pk not in marked  # a revaluation recomputes too
    ]
    if revalue or recompute:
        log.warning(
            "Environment %s: %d homes waited over %s for their valuation, %d for their "
            "recompute; doing it now.",
            environment.pk,
            len(revalue),
            REFRESH_GRACE,
            len(recompute),
        )
        properties_refresh(environment=environment, revalue_ids=revalue, recompute_ids=recompute)
    closed = refresh_waiting_close(environment=environment, older_than=cutoff)  # logs them
    return {"revalued": len(revalue), "recomputed": len(recompute), "runs_closed": len(closed)}


def properties_refresh(*, environment, revalue_ids: list[int], recompute_ids: list[int]) -> None:
    """Revalue some homes and recompute others, in batches (each batch commits on its own);
    each home's waiting mark is cleared with its new figures."""
    from homes.services.recompute import properties_recompute
    from homes.services.valuations import Revaluer

    if revalue_ids:
        revaluer = Revaluer(environment)
        for start in range(0, len(revalue_ids), REFRESH_BATCH):
            batch = list(
                Property.objects.filter(
                    environment=environment, pk__in=revalue_ids[start : start + REFRESH_BATCH]
                ).order_by("pk")
            )
            with transaction.atomic():
                revaluer.revalue(batch)
    if recompute_ids:
        properties_recompute(environment=environment, property_ids=recompute_ids)
