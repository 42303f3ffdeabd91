"""A masked batch written back through one text parameter per column stores exactly the values given."""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from datajobs.workers.catalog import find_table
from datajobs.workers.maskwrite import BatchWriter

TRICKY = [
    "",
    "\x01",
    "a\x01b",
    "\x02",
    "x\x02",
    "NULL",
    "é✓ 漢字",
    "back\\slash",
    "tab\t\"quote'",
    "{a,b}",
    " ",
]


def writer_for(conn: psycopg.Connection, table: str, key: str, columns: list[str]) -> BatchWriter:
    found = find_table(conn, "public", table)
    assert found is not None
    target = sql.SQL("{}.{}").format(sql.Identifier("public"), sql.Identifier(table))
    return BatchWriter(target, found.columns[key], [found.columns[c] for c in columns])


def test_every_value_comes_back_as_written_text_or_binary(database):
    dsn = database("write")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, a text, b varchar(40), d date, ts timestamptz, n text)"
        )
        conn.execute(
            "INSERT INTO t SELECT i, 'x', 'y', date '2000-01-01', now(), 'keep' FROM generate_series(1, 40) i"
        )
        writer = writer_for(conn, "t", "id", ["a", "b", "d", "ts"])
        moment = dt.datetime(2020, 5, 17, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        cases = [
            # plain text, integers and dates: every column as one text parameter
            (
                [f"v{i}" for i in range(10)],
                [None, *[f"w{i}" for i in range(9)]],
                dt.date(1, 1, 1),
                None,
                True,
            ),
            # a value holding the separator or the NULL marker: that column as a binary array
            (TRICKY[:10], [TRICKY[i] for i in range(1, 11)], dt.date(9999, 12, 31), moment, False),
        ]
        first = 1
        for a, b, day, ts, as_text in cases:
            keys = list(range(first, first + 10))
            changed = [keys, a, b, [day] * 10, [ts] * 10]
            query, params = writer.statement(changed)
            assert [isinstance(params[f"c{i}"], str) for i in range(5)] == [
                True,
                as_text,
                as_text,
                True,
                as_text,
            ]
            assert conn.execute(query, params).rowcount == 10
            rows = conn.execute(
                "SELECT id, a, b, d, ts, n FROM t WHERE id = ANY(%s) ORDER BY id", (keys,)
            ).fetchall()
            assert rows == [(k, x, y, day, ts, "keep") for k, x, y in zip(keys, a, b, strict=True)]
            first += 10
        conn.commit()
        assert conn.execute("SELECT count(*) FROM t WHERE a = 'x'").fetchone() == (20,)  # the rest untouched


def test_text_keys_and_keys_outside_the_batch(database):
    dsn = database("write")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE k (code text PRIMARY KEY, a text)")
        conn.execute("INSERT INTO k VALUES ('a', 'x'), ('a\x01', 'x'), ('b', 'x'), ('c', 'x')")
        writer = writer_for(conn, "k", "code", ["a"])
        query, params = writer.statement([["a", "a\x01", "b"], ["1", "2", "3"]])
        assert conn.execute(query, params).rowcount == 3
        assert conn.execute("SELECT code, a FROM k ORDER BY code").fetchall() == [
            ("a", "1"),
            ("a\x01", "2"),
            ("b", "3"),
            ("c", "x"),
        ]
