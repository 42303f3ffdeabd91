"""Key buckets for the integrity check: which keys' rows may differ, found from per-bucket checksums.

Every row falls in the bucket given by the low bits of a 64-bit hash of its key (the same key lands in the
same bucket in both databases, whatever the table sizes). Each database computes, per bucket, the row count
and the XOR of its rows' hashes; equal pairs mean equal row sets (up to a 2^-64 chance per differing row),
so only the keys of the buckets that differ need a row-level look. When those buckets still hold many
rows, they are split by the next bits of the same hash (refined), in the databases again, so the rows that
travel are about the differing ones, not the table. The buckets a query must look at travel as a bitmap
(`get_bit`, O(1) per row), whatever their number; the worker keeps only that bitmap and a few counters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import sql

ROWS_PER_BUCKET = 16  # the first level aims at about this many rows per bucket …
MIN_BITS, FIRST_MAX_BITS = 4, 16  # … with 16 to 65,536 buckets (the per-bucket sums travel to the worker)
REFINE_BITS = 6  # a refinement splits each differing bucket in 64
MAX_BITS = 24  # at most 16.7M buckets: a 2 MiB bitmap
STREAM_ROWS = 20_000  # refine while the differing buckets hold more rows than this (INTEGRITY_STREAM_ROWS) …
REFINE_ROWS_PER_DIRTY = 4  # … and more than this many per differing bucket …
REFINE_WHILE_SHARE = 0.8  # … and the last level left at most this share of its rows in differing buckets

TYPED_HASH_TYPES = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "text",
        "character varying",
        "numeric",
        "boolean",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "time without time zone",
        "uuid",
        "bytea",
        "jsonb",
        "real",
        "double precision",
    }
)
HASH_COMPATIBLE = ({"smallint", "integer", "bigint"}, {"text", "character varying"})


def base_type(type_sql: str) -> str:
    """`numeric(10,2)` -> `numeric`; `character varying(20)[]` -> `character varying[]`."""
    head, _, rest = type_sql.partition("(")
    return head + rest.partition(")")[2] if rest else head


def typed_hash_ok(source_type: str, destination_type: str) -> bool:
    """Whether a column may be compared by its type's own hash (equal values hash equal on both sides)."""
    s, d = base_type(source_type), base_type(destination_type)
    if s not in TYPED_HASH_TYPES or d not in TYPED_HASH_TYPES:
        return False
    return s == d or any(s in group and d in group for group in HASH_COMPATIBLE)


def row_hash(columns: tuple[str, ...] | list[str], typed: bool) -> sql.Composable:
    """A 64-bit hash of the columns: by their types' hash functions (no text rendering) when every column
    allows it on both sides, else of the row's text, as PostgreSQL renders it."""
    row = sql.SQL("ROW({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    if typed:
        return sql.SQL("hash_record_extended({}, 0)").format(row)
    return sql.SQL("hashtextextended({}::text, 0)").format(row)


def bucket_of(key_hash: sql.Composable, bits: int) -> sql.Composable:
    return sql.SQL("({} & {})").format(key_hash, sql.Literal((1 << bits) - 1))


def in_buckets(key_hash: sql.Composable, bits: int) -> sql.Composable:
    """`TRUE` for rows whose bucket is set in the bitmap parameter %(buckets)s."""
    return sql.SQL("get_bit(%(buckets)s::bytea, {}::int) = 1").format(bucket_of(key_hash, bits))


def first_bits(rows: float) -> int:
    """Bucket bits of the first level for about `rows` rows on the larger side."""
    bits = MIN_BITS
    while bits < FIRST_MAX_BITS and (1 << bits) * ROWS_PER_BUCKET < rows:
        bits += 1
    return bits


@dataclass
class Difference:
    """The buckets whose sums differ (as a bitmap), how many rows the larger side holds in them, and how
    many rows agree."""

    bits: int
    buckets: bytearray
    dirty: int = 0
    rows: int = 0
    agreeing_rows: int = 0

    def _mark(self, bucket: int, rows: int) -> None:
        self.buckets[bucket >> 3] |= 1 << (bucket & 7)  # as get_bit(bytea, n) reads: byte n/8, bit n%8
        self.dirty += 1
        self.rows += rows

    def worth_refining(self, stream_rows: int = STREAM_ROWS) -> bool:
        """Whether splitting the differing buckets is likely to leave far fewer rows to stream: not when
        they hold few rows, or nearly all the rows the level looked at (then most rows differ)."""
        return (
            self.bits + REFINE_BITS <= MAX_BITS
            and self.rows > stream_rows
            and self.rows > REFINE_ROWS_PER_DIRTY * self.dirty
            and self.rows <= REFINE_WHILE_SHARE * (self.rows + self.agreeing_rows)
        )


def compare(
    source: Iterator[tuple[int, int, int]], destination: Iterator[tuple[int, int, int]], bits: int
) -> Difference:
    """Merge two streams of (bucket, rows, hash) in ascending bucket order; memory: the bitmap."""
    out = Difference(bits, bytearray((1 << bits) // 8 or 1))
    end = (1 << 63, 0, 0)
    s, d = next(source, end), next(destination, end)
    while s is not end or d is not end:
        if s[0] == d[0]:
            if s[1:] == d[1:]:
                out.agreeing_rows += s[1]
            else:
                out._mark(s[0], max(s[1], d[1]))
            s, d = next(source, end), next(destination, end)
        elif s[0] < d[0]:
            out._mark(s[0], s[1])
            s = next(source, end)
        else:
            out._mark(d[0], d[1])
            d = next(destination, end)
    return out


def everything(rows: int) -> Difference:
    """One bucket holding every row (bits 0): stream them all."""
    return Difference(0, bytearray(b"\x01"), dirty=1, rows=rows)
