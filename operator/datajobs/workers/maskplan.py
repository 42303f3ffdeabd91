"""One table's masking plan: its rule checked against the catalog, and the statements that read and write
a batch (`SELECT … ORDER BY key LIMIT n FOR UPDATE`, then maskwrite.py's UPDATE)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from datajobs.workers.catalog import Column, Table, find_table, is_unique
from datajobs.workers.maskwrite import BatchWriter
from datajobs.workers.protocol import ConfigError
from datajobs.workers.rules import TEXT_ALGORITHMS, Algorithm, ColumnRule, TableRule


@dataclass
class PreparedTable:
    rule: TableRule
    table: Table
    key: Column
    columns: list[tuple[ColumnRule, Column]]
    select_first: sql.Composed
    select_next: sql.Composed
    writer: BatchWriter


def prepare(conn: psycopg.Connection, rule: TableRule) -> PreparedTable:
    """Check one table rule against the catalog and build its statements (ConfigError if it does not fit)."""
    table = find_table(conn, rule.schema_name, rule.table_name)
    if table is None:
        raise ConfigError(f"table {rule.schema_name}.{rule.table_name} does not exist")
    if rule.key_column:
        key_name = rule.key_column
        if key_name not in table.columns:
            raise ConfigError(f"{rule.table}: key column {key_name} does not exist")
        if not (table.columns[key_name].not_null and is_unique(conn, table, key_name)):
            raise ConfigError(f"{rule.table}: key column {key_name} is not unique and NOT NULL")
    elif len(table.primary_key) == 1:
        key_name = table.primary_key[0]
    else:
        raise ConfigError(f"{rule.table}: no single-column primary key; set keyColumn")
    columns = []
    for column_rule in rule.columns:
        column = table.columns.get(column_rule.column)
        if column is None:
            raise ConfigError(f"{rule.table}: column {column_rule.column} does not exist")
        if column.name == key_name:
            raise ConfigError(
                f"{rule.table}: the key column {key_name} cannot be masked (it orders the batches)"
            )
        if column_rule.algorithm in TEXT_ALGORITHMS and column.category != "S":
            raise ConfigError(f"{rule.table}.{column.name}: {column_rule.algorithm} needs a text column")
        if column_rule.algorithm is Algorithm.DATE_SHIFT and column.type_sql not in (
            "date",
            "timestamp without time zone",
            "timestamp with time zone",
        ):
            raise ConfigError(f"{rule.table}.{column.name}: date_shift needs a date or timestamp column")
        columns.append((column_rule, column))

    ident = sql.Identifier
    target = sql.SQL("{}.{}").format(ident(table.schema), ident(table.name))
    key_col = ident(key_name)
    selected = sql.SQL(", ").join([key_col, *(ident(c.name) for _, c in columns)])
    select = sql.SQL("SELECT {cols} FROM {t} {where} ORDER BY {k} LIMIT %(limit)s FOR UPDATE")
    select_first = select.format(cols=selected, t=target, where=sql.SQL(""), k=key_col)
    select_next = select.format(
        cols=selected, t=target, where=sql.SQL("WHERE {} > %(after)s").format(key_col), k=key_col
    )
    writer = BatchWriter(target, table.columns[key_name], [c for _, c in columns])
    return PreparedTable(rule, table, table.columns[key_name], columns, select_first, select_next, writer)
