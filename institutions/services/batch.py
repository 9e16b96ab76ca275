"""Batches refused whole: the error every bulk service raises, naming each bad row."""

from __future__ import annotations


class RowsInvalid(Exception):
    """Nothing was saved; `rows` is [{"index": 0-based row, "fields": {field: [messages]}}]."""

    def __init__(self, rows: list[dict], *, total: int):
        self.rows = sorted(rows, key=lambda r: r["index"])
        self.total = total
        super().__init__(f"{len(self.rows)} of {total} rows are invalid")


class RowErrors:
    """Collects errors by row index and field while a batch is checked."""

    def __init__(self) -> None:
        self._rows: dict[int, dict[str, list[str]]] = {}

    def add(self, index: int, field: str, message: str) -> None:
        self._rows.setdefault(index, {}).setdefault(field, []).append(message)

    def merge(self, index: int, fields: dict[str, list[str]]) -> None:
        for field, messages in fields.items():
            for message in messages:
                self.add(index, field, message)

    def as_dict(self) -> dict[int, dict[str, list[str]]]:
        return self._rows

    def __contains__(self, index: int) -> bool:
        return index in self._rows

    def __bool__(self) -> bool:
        return bool(self._rows)

    def raise_if_any(self, *, total: int) -> None:
        if self._rows:
            raise RowsInvalid(
                [{"index": i, "fields": fields} for i, fields in self._rows.items()], total=total
            )
