"""The integrity worker's key buckets on real PostgreSQL: bucket bounds, composite and text keys, NULLs,
tables of different sizes, the text-form fallback and refinement give exactly the classes of an oracle."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter, defaultdict
from typing import Any

import psycopg
import pytest

from datajobs.workers import segments

BASE = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
DAY = 86400
NULL_BUCKET = -(2**62)
TENANTS = ["a", "B", "a b", "é", "z"]  # mixed case, a space, non-ASCII: ordered by COLLATE "C"
N = 20_000

Key = tuple[str, int]
Row = tuple[str | None, bool, dt.datetime | None]  # payload, flag, updated_at


def test_a_bitmap_selects_exactly_its_buckets_at_every_level_and_edge(database):
    """bucket_of/in_buckets in SQL against the Python bitmap: bucket 0, the last bucket, byte edges."""
    dsn = database("bits")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE k (id bigint PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO k SELECT i, 'n' || i FROM generate_series(1, 30000) i")
        for typed, columns in ((True, ("id",)), (False, ("name",)), (True, ("id", "name"))):
            key_hash = segments.row_hash(columns, typed)
            for bits in (segments.MIN_BITS, 9, segments.FIRST_MAX_BITS, 22, segments.MAX_BITS):
                query = psycopg.sql.SQL("SELECT id, {} FROM k").format(segments.bucket_of(key_hash, bits))
                bucket = dict(conn.execute(query).fetchall())
                assert all(0 <= b < 1 << bits for b in bucket.values())
                present = sorted(set(bucket.values()))
                chosen = {
                    present[0],
                    present[-1],
                    *random.Random(bits).sample(present, min(50, len(present))),
                }
                chosen |= {b for b in present if b % 8 in (0, 7)} if bits <= 9 else set()
                marked = segments.Difference(bits, bytearray((1 << bits) // 8 or 1))
                for b in chosen:
                    marked._mark(b, 1)
                where = psycopg.sql.SQL("SELECT id FROM k WHERE {}").format(
                    segments.in_buckets(key_hash, bits)
                )
                got = {r[0] for r in conn.execute(where, {"buckets": bytes(marked.buckets)})}
                assert got == {i for i, b in bucket.items() if b in chosen}, (columns, bits)
                assert marked.dirty == len(chosen)


def source_rows() -> dict[Key, Row]:
    rows: dict[Key, Row] = {}
    for i in range(N):
        key = (TENANTS[i % len(TENANTS)], i // len(TENANTS) * 3 + 1)
        payload = None if i % 11 == 0 else f"p{i}"
        updated = None if i % 97 == 0 else BASE + dt.timedelta(hours=i % 500, seconds=i)
        rows[key] = (payload, i % 2 == 0, updated)
    return rows


def destination_rows(source: dict[Key, Row]) -> dict[Key, Row]:
    """A copy with differences: some missing, orphans, stale, incorrect (NULL vs '', flag), pending."""
    keys = list(source)
    rows = dict(source)
    for k in keys[5::331]:  # missing
        del rows[k]
    for j, k in enumerate(keys[17::401]):  # changed
        payload, flag, updated = source[k]
        if j % 4 == 0:
            rows[k] = ("" if payload is None else None, flag, updated)  # NULL <-> '' with the same time
        elif j % 4 == 1:
            rows[k] = (payload, not flag, updated - dt.timedelta(minutes=5) if updated else None)  # older
        elif j % 4 == 2:
            rows[k] = (f"{payload}!", flag, updated + dt.timedelta(minutes=5) if updated else updated)
        else:
            rows[k] = (payload, flag, None)  # the destination lost its timestamp
    for j in range(120):  # orphans: keys the source does not have (seq 0 and 2 mod 3)
        rows[(TENANTS[j % len(TENANTS)], j * 3 + 2)] = (f"ghost{j}", True, BASE + dt.timedelta(hours=1))
    return rows


def add_pending(source: dict[Key, Row], destination: dict[Key, Row]) -> None:
    newest = max(r[2] for r in destination.values() if r[2] is not None)
    keys = list(source)
    for j, k in enumerate(keys[29::1900]):  # changed at the source after the destination's newest row
        flag = source[k][1]
        source[k] = (f"new{j}", flag, newest + dt.timedelta(hours=1 + j))
    source[("zz", 1)] = ("created", True, newest + dt.timedelta(days=1))


def oracle(source: dict[Key, Row], destination: dict[Key, Row]) -> Counter[str]:
    """The documented rules, applied key by key."""
    stamps = [r[2] for r in destination.values() if r[2] is not None]
    mark = max(stamps) if stamps else None
    classes: Counter[str] = Counter()
    for key in source.keys() | destination.keys():
        s, d = source.get(key), destination.get(key)
        classes["compared"] += 1
        if d is None:
            assert s is not None
            classes["pending" if mark and s[2] and s[2] > mark else "missing"] += 1
        elif s is None:
            classes["orphaned"] += 1
        elif s != d:
            if mark and s[2] and s[2] > mark:
                classes["pending"] += 1
            elif s[2] is not None and (d[2] is None or d[2] < s[2]):
                classes["stale"] += 1
            else:
                classes["incorrect"] += 1
    return classes


def partitions(source: dict[Key, Row], destination: dict[Key, Row]) -> list[dict[str, int]]:
    buckets: dict[int, list[Counter]] = defaultdict(lambda: [Counter(), Counter()])
    for side, rows in enumerate((source, destination)):
        for key, row in rows.items():
            bucket = NULL_BUCKET if row[2] is None else int(row[2].timestamp()) // DAY
            buckets[bucket][side][(key, row)] += 1
    return [
        {
            "source_row_count": sum(s.values()),
            "destination_row_count": sum(d.values()),
            "last_modified_lower_bound_epoch": 0 if b == NULL_BUCKET else b * DAY,
            "last_modified_upper_bound_epoch": 0 if b == NULL_BUCKET else (b + 1) * DAY,
        }
        for b, (s, d) in sorted(buckets.items())
        if s != d
    ]


def create(dsn: str, schema: str, rows: dict[Key, Row], flag_type: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
        conn.execute(
            f"CREATE TABLE {schema}.events (tenant text, seq integer, payload text, flag {flag_type},"  # type: ignore[arg-type]
            " updated_at timestamptz, PRIMARY KEY (tenant, seq))"
        )
        with conn.cursor().copy(f"COPY {schema}.events FROM STDIN") as copy:  # type: ignore[arg-type]
            for (tenant, seq), (payload, flag, updated) in rows.items():
                copy.write_row(
                    (tenant, seq, payload, flag if flag_type == "boolean" else "tf"[not flag], updated)
                )


@pytest.mark.parametrize(
    ("hashing", "stream_rows"),
    [
        ("typed", "20000"),
        ("text form", "0"),
    ],  # text: the flag is boolean at the source, text at the destination
)
def test_composite_text_keys_nulls_and_tables_of_different_sizes_are_classified_exactly(
    hashing, stream_rows, database, run_worker
):
    source = source_rows()
    destination = destination_rows(source)
    add_pending(source, destination)
    assert len(source) != len(destination)
    expected = oracle(source, destination)
    assert all(expected[c] > 0 for c in ("missing", "orphaned", "stale", "incorrect", "pending"))
    src, dst = database("src"), database("dst")
    create(src, "public", source, "boolean")
    create(dst, "acme", destination, "boolean" if hashing == "typed" else "text")
    env: dict[str, Any] = {
        "SOURCE_DSN": src,
        "DESTINATION_DSN": dst,
        "DATAJOBS_ORG_SCHEMA": "acme",
        "DATAJOBS_MODEL_IDS": json.dumps(["events"]),
        "INTEGRITY_BATCH_SIZE": "89",
        "INTEGRITY_STREAM_ROWS": stream_rows,
    }
    run = run_worker("integrity", env)
    assert run.wait() == 0, run.log()
    (result,) = run.report()["data_integrity_results"]
    got = {
        c: result[f"total_rows_{c}"]
        for c in ("compared", "stale", "missing", "incorrect", "orphaned", "pending")
    }
    assert got == {c: expected[c] for c in got}
    assert result["mismatched_partitions"] == partitions(source, destination)
    assert any(p["last_modified_lower_bound_epoch"] == 0 for p in result["mismatched_partitions"])  # NULLs
    assert ("refining" in run.log()) == (stream_rows == "0")  # the refinement path ran only when asked
