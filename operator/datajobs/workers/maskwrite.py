"""How a masked batch goes back: one `UPDATE … FROM unnest(…)`, bounded by the batch's key range.

Each column travels as one text parameter that the server splits (`string_to_array`) and casts, when its
values are text, integers or dates and none holds the separator: joining a column is one C call, where
psycopg dumps a list parameter one element at a time in Python. Any other column goes as a binary array."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from datajobs.workers.catalog import Column

SEPARATOR = "\x01"
NULL = "\x02"  # a whole element that is only this is NULL
_TEXT_TYPES = frozenset({str, int, dt.date})


def _as_text(values: Sequence[object]) -> str | None:
    """The column joined by SEPARATOR (NULL marked), or None when it must go as a binary array."""
    kinds = set(map(type, values))
    has_null = type(None) in kinds
    kinds.discard(type(None))
    if not kinds <= _TEXT_TYPES:
        return None
    if str in kinds:
        if len(kinds) > 1 or NULL in values:
            return None
        parts: Sequence[object] = [NULL if v is None else v for v in values] if has_null else values
        text = SEPARATOR.join(parts)  # type: ignore[arg-type]
        return text if text.count(SEPARATOR) == len(values) - 1 else None
    if has_null:
        return SEPARATOR.join(NULL if v is None else str(v) for v in values)
    return SEPARATOR.join(map(str, values))


@dataclass
class BatchWriter:
    """The UPDATE of one table's masked columns; `statement(columns)` -> (query, params)."""

    target: sql.Composable
    key: Column
    columns: list[Column]
    _queries: dict[tuple[bool, ...], sql.Composed] = field(default_factory=dict)

    def statement(self, changed: list[list[Any]]) -> tuple[sql.Composed, dict[str, Any]]:
        """`changed`: the key column first, then each masked column, rows in key order."""
        params: dict[str, Any] = {"first": changed[0][0], "last": changed[0][-1]}
        modes = []
        for i, values in enumerate(changed):
            text = _as_text(values)
            modes.append(text is not None)
            params[f"c{i}"] = values if text is None else text
        query = self._queries.get(tuple(modes))
        if query is None:
            query = self._queries[tuple(modes)] = self._compose(modes)
        return query, params

    def _compose(self, modes: list[bool]) -> sql.Composed:
        ident = sql.Identifier
        arrays = []
        for i, (column, as_text) in enumerate(zip([self.key, *self.columns], modes, strict=True)):
            placeholder = sql.Placeholder(f"c{i}")
            array_type = sql.SQL(column.type_sql + "[]")
            if as_text:
                arrays.append(
                    sql.SQL("string_to_array({}, {}, {})::{}").format(
                        placeholder, sql.Literal(SEPARATOR), sql.Literal(NULL), array_type
                    )
                )
            else:
                arrays.append(sql.SQL("{}::{}").format(sql.Placeholder(f"c{i}", "b"), array_type))
        aliases = [ident(f"m{i}") for i in range(len(self.columns))]
        key_type = sql.SQL(self.key.type_sql)
        # The key range bounds the join: unbounded, the planner may merge-join the whole key index from
        # its start for every batch (quadratic in the table's size).
        return sql.SQL(
            "UPDATE {t} AS t SET {sets} FROM unnest({arrays}) AS v(k, {aliases})"
            " WHERE t.{k} = v.k AND t.{k} >= {first}::{kt} AND t.{k} <= {last}::{kt}"
        ).format(
            t=self.target,
            sets=sql.SQL(", ").join(
                sql.SQL("{} = v.{}").format(ident(c.name), alias)
                for c, alias in zip(self.columns, aliases, strict=True)
            ),
            arrays=sql.SQL(", ").join(arrays),
            aliases=sql.SQL(", ").join(aliases),
            k=ident(self.key.name),
            first=sql.Placeholder("first"),
            last=sql.Placeholder("last"),
            kt=key_type,
        )
