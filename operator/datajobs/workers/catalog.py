"""PostgreSQL catalog look-ups the workers share: tables, columns and their types, keys."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Column:
    name: str
    attnum: int
    type_sql: str  # format_type(): usable in a cast, e.g. `character varying(200)`
    category: str  # pg_type.typcategory: S string, D date/time, N numeric, U user, ...
    not_null: bool


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """`"schema"."name"`, quoted for display and for copy-pasting into psql."""
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def find_table(conn: psycopg.Connection, schema: str, name: str) -> Table | None:
    """The ordinary or partitioned table `schema.name`, or None."""
    row = conn.execute(
        """SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')""",
        (schema, name),
    ).fetchone()
    if row is None:
        return None
    oid = int(row[0])
    columns = {
        r[0]: Column(r[0], int(r[1]), r[2], r[3], bool(r[4]))
        for r in conn.execute(
            """SELECT a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), t.typcategory, a.attnotnull
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
            (oid,),
        )
    }
    pk = conn.execute(
        """SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE i.indrelid = %s AND i.indisprimary""",
        (oid,),
    ).fetchone()
    primary_key = tuple(pk[0]) if pk and pk[0] else ()
    return Table(oid, schema, name, columns, primary_key)


def is_unique(conn: psycopg.Connection, table: Table, column: str) -> bool:
    """Whether a unique index (or the primary key) covers exactly `column`."""
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = %s AND i.indisunique
                          AND i.indnatts = 1 AND i.indkey[0] = %s AND i.indpred IS NULL)""",
        (table.oid, table.columns[column].attnum),
    ).fetchone()
    return bool(row and row[0])
