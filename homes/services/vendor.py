"""Vendor values, by CSV upload (admin) or API: refused whole when any row is bad.

Stored values are used once their properties are revalued: at once for a small import, in
the background (a refresh run of the properties waiting for a valuation) for a large one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction

from homes.finance.rounding import cents
from homes.models import Property, RefreshRun, VendorValue
from homes.services.refresh import refresh_waiting_start
from homes.services.valuations import Revaluer
from homes.valuation.providers import MAX_MONEY, VENDOR_MAX_AGE, vendor_range
from institutions.models import AuditEntry
from institutions.services import audit_record

REQUIRED_COLUMNS = ("property", "value", "as_of")
OPTIONAL_COLUMNS = ("low", "high", "fsd")
MAX_ROWS = 100_000
#: Up to this many properties, an import revalues them in its own transaction, so the
#: admin and the API answer with the new values. Revaluing takes about a second per 2,000
#: homes: a large file would keep the request past the web worker's timeout, so beyond
#: this a refresh run revalues them after the import commits.
INLINE_REVALUE_MAX = 1000


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (the header is row 0)
    field: str
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}, {self.field}: {self.message}"


@dataclass(frozen=True)
class VendorImport:
    imported: int  # vendor values stored
    properties: int  # the properties they value
    run: RefreshRun | None = None  # revaluing them in the background; None: revalued already


class VendorImportError(Exception):
    """The import was refused; nothing was saved. `errors` names each bad row and field."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors[:20])))
        self.errors = errors


# Commas are thousands separators only: "512,000.50". "512000,50" (a decimal comma) is
# refused rather than read as a hundred times the value.
_GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d*)?$")
_MAX_ID = 2**63 - 1  # the database's largest key


def _decimal(raw, row, field, errors, *, required=False, lo=None, hi=None):
    text = (raw if raw is not None else "").strip().lstrip("$").strip()
    if "," in text:
        if not _GROUPED.match(text):
            errors.append(RowError(row, field, f"{raw!r} is not a number (use . for decimals)."))
            return None
        text = text.replace(",", "")
    if not text:
        if required:
            errors.append(RowError(row, field, "is required."))
        return None
    try:
        value = Decimal(text)
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors.append(RowError(row, field, f"{raw!r} is not a number."))
        return None
    if lo is not None and value < lo:
        errors.append(RowError(row, field, f"{value} is below {lo}."))
        return None
    if hi is not None and value > hi:
        errors.append(RowError(row, field, f"{value} is above {hi}."))
        return None
    return value


def _date(raw, row, field, errors, *, today: date):
    text = (raw or "").strip()
    try:
        value = date.fromisoformat(text)
    except ValueError:
        errors.append(RowError(row, field, f"{text!r} is not a date (YYYY-MM-DD)."))
        return None
    if value > today:
        errors.append(RowError(row, field, f"{value} is in the future."))
        return None
    if value < today - VENDOR_MAX_AGE:
        # The vendor provider never answers with it: it would be stored, and reported as
        # imported, without ever valuing the home.
        errors.append(
            RowError(
                row,
                field,
                f"{value} is more than {VENDOR_MAX_AGE.days} days ago: a value that old is "
                "not used.",
            )
        )
        return None
    return value


def _pk(ref: str) -> int | None:
    """The property id of a `#<id>` reference, or None."""
    digits = ref[1:]
    if ref.startswith("#") and digits.isascii() and digits.isdigit() and len(digits) <= 19:
        number = int(digits)
        return number if number <= _MAX_ID else None
    return None


def parse_vendor_csv(content: bytes | str) -> list[dict]:
    """Rows of a vendor CSV as dicts; a missing column is an error naming it."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    reader = csv.DictReader(io.StringIO(text))
    try:
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise VendorImportError([RowError(0, c, "column is missing.") for c in missing])
        reader.fieldnames = columns
        return list(reader)
    except csv.Error as error:  # an unclosed quote, a field over the size limit, a NUL
        line = max(reader.line_num - 1, 0)
        raise VendorImportError(
            [RowError(line, "file", f"is not a readable CSV here: {error}.")]
        ) from error


def vendor_values_import(
    *, environment, rows: list[dict], vendor: str = "vendor", actor=None, actor_label=""
) -> VendorImport:
    """Validate every row, then store them all, or nothing (VendorImportError names each
    bad row and field).

    A row names its property by external id (or by `#<id>`), and gives value, as_of and
    either fsd or both low and high. Up to INLINE_REVALUE_MAX properties are revalued in
    the same transaction; more are marked as waiting for a valuation, in that transaction,
    and a refresh run revalues them in batches once it commits (`run`: its progress and
    any failure show in the admin, where it resumes; see refresh_waiting_start).
    """
    if not rows:
        raise VendorImportError([RowError(0, "file", "has no data rows.")])
    if len(rows) > MAX_ROWS:
        raise VendorImportError([RowError(0, "file", f"has more than {MAX_ROWS:,} rows.")])
    refs = {str(r.get("property") or "").strip() for r in rows}
    by_external = dict(
        Property.objects.filter(environment=environment, external_id__in=refs).values_list(
            "external_id", "pk"
        )
    )
    pk_refs = [pk for pk in map(_pk, refs) if pk is not None]
    by_pk = set(
        Property.objects.filter(environment=environment, pk__in=pk_refs).values_list(
            "pk", flat=True
        )
    )
    # "In the future" where the institution is: its own today may not have begun in UTC.
    today = environment.institution.today()
    errors: list[RowError] = []
    values: list[VendorValue] = []
    seen: dict[tuple, int] = {}
    for number, raw in enumerate(rows, start=1):
        row_errors: list[RowError] = []
        ref = str(raw.get("property") or "").strip()
        pid = by_external.get(ref)
        if pid is None and (pk := _pk(ref)) in by_pk:
            pid = pk
        if not ref:
            row_errors.append(RowError(number, "property", "is required."))
        elif pid is None:
            row_errors.append(RowError(number, "property", f"no property {ref!r} here."))
        value = _decimal(
            raw.get("value"), number, "value", row_errors, required=True, lo=1, hi=MAX_MONEY
        )
        low = _decimal(raw.get("low"), number, "low", row_errors, lo=0, hi=MAX_MONEY)
        high = _decimal(raw.get("high"), number, "high", row_errors, lo=0, hi=MAX_MONEY)
        fsd = _decimal(raw.get("fsd"), number, "fsd", row_errors, lo=Decimal("0.0001"), hi=1)
        as_of = _date(raw.get("as_of"), number, "as_of", row_errors, today=today)
        if value is not None and low is not None and low > value:
            row_errors.append(RowError(number, "low", f"{low} is above the value {value}."))
        if value is not None and high is not None and high < value:
            row_errors.append(RowError(number, "high", f"{high} is below the value {value}."))
        if fsd is None and (low is None or high is None) and not row_errors:
            row_errors.append(RowError(number, "fsd", "give the FSD, or both low and high."))
        if fsd is not None and not row_errors:
            # The range the FSD gives (value * (1 ± FSD), where low or high is not given)
            # is stored with the home: it must fit a money field too (an FSD is at most 1,
            # so the low end is never negative).
            _, derived_high = vendor_range(value, low, high, fsd)
            if high is None and derived_high > MAX_MONEY:
                row_errors.append(
                    RowError(
                        number,
                        "fsd",
                        f"{fsd} gives the value {value} a high end of {derived_high}, above "
                        f"{MAX_MONEY}: give low and high instead.",
                    )
                )
        key = (pid, vendor, as_of)
        if not row_errors and key in seen:
            row_errors.append(
                RowError(number, "property", f"repeats row {seen[key]} for the same date.")
            )
        seen.setdefault(key, number)
        if row_errors:
            errors.extend(row_errors)
            continue
        if fsd is not None:
            fsd = fsd.quantize(Decimal("0.0001"))
        # Kept as given, to the cent (homes.finance.rounding), the same on every database.
        value, low, high = (None if v is None else cents(v) for v in (value, low, high))
        values.append(
            VendorValue(
                environment=environment,
                property_id=pid,
                vendor=vendor,
                value=value,
                low=low,
                high=high,
                fsd=fsd,
                as_of=as_of,
            )
        )
    if errors:
        raise VendorImportError(errors)
    with transaction.atomic():
        VendorValue.objects.bulk_create(
            values,
            update_conflicts=True,
            unique_fields=["environment", "property", "vendor", "as_of"],
            update_fields=["value", "low", "high", "fsd"],
        )
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            object_type="homes.VendorValue",
            object_repr=f"{len(values)} vendor values ({vendor})",
            changes={"imported": {"before": None, "after": len(values)}},
        )
        ids = sorted({v.property_id for v in values})
        if len(ids) > INLINE_REVALUE_MAX:
            run = refresh_waiting_start(
                environment=environment,
                property_ids=ids,
                reason=f"revaluing {len(ids):,} properties after {len(values):,} vendor "
                f"values were imported ({vendor})",
                actor=actor,
                actor_label=actor_label,
            )
            return VendorImport(len(values), len(ids), run)
        # As of the institution's today: values dated today are used today.
        Revaluer(environment, as_of=today).revalue(
            list(Property.objects.filter(environment=environment, pk__in=ids))
        )
    return VendorImport(len(values), len(ids))
