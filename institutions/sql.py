"""Model instances from hand-written SQL, with the work a raw queryset repeats done once.

The reads that run on every member page are written in SQL: composing the ORM query
costs several times more than running it. `Model.objects.raw()` still works out, on every
query, the columns the cursor returned, the converters of each and the model's init
order; for a query that always selects the same columns that is most of its cost.
`ModelColumns` prepares them once per model (and database vendor) and builds each
instance as the ORM does (`Model.from_db`, the database's conversions applied).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


class ModelColumns:
    """Columns of `model` selected as `<alias>.<column>`: all concrete ones in field order
    (what `instance` needs), or the named fields (for `values`)."""

    def __init__(self, model: type[Model], alias: str, names: tuple[str, ...] = ()) -> None:
        self.model = model
        self.alias = alias
        meta = model._meta
        self.fields = tuple(meta.get_field(n) for n in names) if names else meta.concrete_fields
        self.attnames = [f.attname for f in self.fields]
        self._converters: dict[str, list[tuple[int, list, object]]] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def select(self) -> str:
        """The select list: `<alias>.<column>, …`."""
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(f.column)}" for f in self.fields)

    def _converters_for(self) -> list[tuple[int, list, object]]:
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if funcs:
                    found.append((i, funcs, col))
            self._converters[connection.vendor] = found
        return found

    def values(self, row, start: int = 0) -> list:
        """The python values of these columns in `row[start:start + len(self)]`."""
        values = list(row[start : start + len(self.fields)])
        for i, funcs, col in self._converters_for():
            value = values[i]
            for func in funcs:
                value = func(value, col, connection)
            values[i] = value
        return values

    def instance(self, row, start: int = 0) -> Model:
        """The model instance in `row[start:start + len(self)]` (all concrete columns)."""
        return self.model.from_db(connection.alias, self.attnames, self.values(row, start))
