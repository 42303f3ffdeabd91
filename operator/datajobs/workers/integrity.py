"""The reference integrity worker: compares each model's destination table with its source table.

Per model, inside one REPEATABLE READ snapshot on each side, the databases do the per-row work: (1) one
scan per side (both sides at once) yields per-time-bucket row counts and hash sums over the last-modified
column, compared bucket by bucket into `mismatched_partitions`, and per-key-bucket counts and hash sums
(segments.py); (2) only the key buckets that differ are refined, then streamed in primary-key order
through server-side cursors and merge-joined by key, each sampled key landing in exactly one of
ok / stale / missing / incorrect / orphaned / pending. Rows in agreeing buckets are counted as compared and
never leave the database. Memory stays bounded by the batch size and the bucket count."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from datajobs.models import DataIntegrityResultResource, MismatchedPartition
from datajobs.workers import segments
from datajobs.workers.catalog import Table, find_table
from datajobs.workers.progress import ProgressReporter
from datajobs.workers.protocol import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    MESSAGE_LIMIT,
    ConfigError,
    json_env,
    publish_result,
    require,
    write_termination_message,
)
from datajobs.workers.segments import Difference
from datajobs.workers.stopping import Stopped, StopRequest, StopWatcher

log = logging.getLogger(__name__)

SOURCE_DSN_ENV = "SOURCE_DSN"
DESTINATION_DSN_ENV = "DESTINATION_DSN"
MODELS_ENV = "INTEGRITY_MODELS"
SOURCE_SCHEMA_ENV = "INTEGRITY_SOURCE_SCHEMA"
DESTINATION_SCHEMA_ENV = "INTEGRITY_DESTINATION_SCHEMA"
LAST_MODIFIED_ENV = "INTEGRITY_LAST_MODIFIED_COLUMN"
PARTITION_SECONDS_ENV = "INTEGRITY_PARTITION_SECONDS"
BATCH_SIZE_ENV = "INTEGRITY_BATCH_SIZE"
STREAM_ROWS_ENV = "INTEGRITY_STREAM_ROWS"

DEFAULT_LAST_MODIFIED = "updated_at"
DEFAULT_PARTITION_SECONDS = 86400
DEFAULT_BATCH_SIZE = 5000
NULL_PARTITION = -(2**62)  # the bucket of rows whose last-modified value is NULL


class ModelMapping(BaseModel):
    """How one model maps to tables (an entry of $INTEGRITY_MODELS); unset fields take the defaults."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    source_table: str | None = None
    destination_table: str | None = None
    last_modified_column: str | None = None
    exclude_columns: list[str] = Field(default_factory=list)
    partition_seconds: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class ModelPlan:
    name: str
    source: tuple[str, str]
    destination: tuple[str, str]
    last_modified: str
    exclude: frozenset[str]
    partition_seconds: int
    sample_ids: list[str] | None  # exactly these primary keys, or None for rate sampling


@dataclass
class Tally:
    compared: int = 0
    stale: int = 0
    pending: int = 0
    missing: int = 0
    incorrect: int = 0
    orphaned: int = 0


@dataclass
class JobConfig:
    source_dsn: str
    destination_dsn: str
    sampling_rate: float
    plans: list[ModelPlan]
    batch_size: int = DEFAULT_BATCH_SIZE
    stream_rows: int = segments.STREAM_ROWS


def _split(name: str, default_schema: str) -> tuple[str, str]:
    return (name.split(".", 1)[0], name.split(".", 1)[1]) if "." in name else (default_schema, name)


def load_config(env: Mapping[str, str]) -> JobConfig:
    """The job's inputs from the DATAJOBS_* variables and the connection Secret (ConfigError when invalid)."""
    source_dsn = require(env, SOURCE_DSN_ENV)
    destination_dsn = require(env, DESTINATION_DSN_ENV)
    raw_rate = env.get("DATAJOBS_SAMPLING_RATE", "")
    try:
        rate = float(raw_rate) if raw_rate else 1.0
    except ValueError as exc:
        raise ConfigError(f"DATAJOBS_SAMPLING_RATE is not a number: {raw_rate!r}") from exc
    if not 0 < rate <= 1:
        raise ConfigError(f"DATAJOBS_SAMPLING_RATE must be in (0, 1], not {rate}")
    model_ids = json_env(env, "DATAJOBS_MODEL_IDS", [])
    sample_ids = json_env(env, "DATAJOBS_MODEL_SAMPLE_PRIMARY_IDS", {})
    raw_models = json_env(env, MODELS_ENV, {})
    if not isinstance(model_ids, list) or not all(isinstance(m, str) for m in model_ids):
        raise ConfigError("DATAJOBS_MODEL_IDS must be a JSON list of strings")
    if not isinstance(sample_ids, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in sample_ids.values()
    ):
        raise ConfigError("DATAJOBS_MODEL_SAMPLE_PRIMARY_IDS must be a JSON object of string lists")
    if not isinstance(raw_models, dict):
        raise ConfigError(f"{MODELS_ENV} must be a JSON object keyed by model id")
    try:
        mappings = {k: ModelMapping.model_validate(v) for k, v in raw_models.items()}
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{MODELS_ENV}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    models = model_ids or list(mappings)
    if not models:
        raise ConfigError(f"no models to check: DATAJOBS_MODEL_IDS is empty and {MODELS_ENV} names none")
    try:
        partition_default = int(env.get(PARTITION_SECONDS_ENV) or DEFAULT_PARTITION_SECONDS)
        batch_size = int(env.get(BATCH_SIZE_ENV) or DEFAULT_BATCH_SIZE)
        stream_rows = int(env.get(STREAM_ROWS_ENV) or segments.STREAM_ROWS)
    except ValueError as exc:
        raise ConfigError(
            f"{PARTITION_SECONDS_ENV}, {BATCH_SIZE_ENV} and {STREAM_ROWS_ENV} must be integers"
        ) from exc
    if partition_default < 1 or batch_size < 1 or stream_rows < 0:
        raise ConfigError(
            f"{PARTITION_SECONDS_ENV} and {BATCH_SIZE_ENV} must be positive, {STREAM_ROWS_ENV} >= 0"
        )
    source_schema = env.get(SOURCE_SCHEMA_ENV) or "public"
    destination_schema = env.get("DATAJOBS_ORG_SCHEMA") or env.get(DESTINATION_SCHEMA_ENV) or "public"
    plans = []
    for model in models:
        m = mappings.get(model, ModelMapping())
        ids = sample_ids.get(model)
        plans.append(
            ModelPlan(
                name=model,
                source=_split(m.source_table or model, source_schema),
                destination=_split(m.destination_table or model, destination_schema),
                last_modified=m.last_modified_column or env.get(LAST_MODIFIED_ENV) or DEFAULT_LAST_MODIFIED,
                exclude=frozenset(m.exclude_columns),
                partition_seconds=m.partition_seconds or partition_default,
                sample_ids=list(ids) if ids else None,
            )
        )
    return JobConfig(source_dsn, destination_dsn, rate, plans, batch_size, stream_rows)


class ModelError(Exception):
    """A model that cannot be checked (missing table, no primary key, …): reported, others go on."""


@dataclass
class Side:
    """One side's statements for a model."""

    conn: psycopg.Connection
    table: Table
    target: sql.Composable
    where: sql.Composable
    params: dict[str, Any]


@dataclass
class ModelCheck:
    """Everything needed to check one model on both sides, and the statements that do it."""

    plan: ModelPlan
    key: tuple[str, ...]
    columns: list[str]
    source: Side
    destination: Side
    rate: float
    typed: bool  # rows compared by their columns' type hashes (segments.row_hash)
    key_typed: bool  # keys bucketed by their columns' type hashes
    only_partitions: list[int] | None = None  # key buckets look only at rows of these partitions

    def _in_partitions(self) -> sql.Composable:
        """A differing key has its row on each side in a mismatched partition: the others can be skipped."""
        if self.only_partitions is None:
            return sql.SQL("")
        return sql.SQL(" AND {} = ANY(%(partitions)s::bigint[])").format(self._pb())

    def params(self, side: Side, **extra: Any) -> dict[str, Any]:
        restrict = {} if self.only_partitions is None else {"partitions": self.only_partitions}
        return {**side.params, **restrict, **extra}

    def _lm(self) -> sql.Composable:
        return sql.SQL("date_part('epoch', {})").format(sql.Identifier(self.plan.last_modified))

    def _h(self) -> sql.Composable:
        return segments.row_hash(self.columns, self.typed)

    def _kh(self) -> sql.Composable:
        return segments.row_hash(self.key, self.key_typed)

    def _pb(self) -> sql.Composable:
        return sql.SQL("coalesce(floor({} / {})::bigint, {})").format(
            self._lm(), sql.Literal(self.plan.partition_seconds), sql.Literal(NULL_PARTITION)
        )

    def partitions_query(self, side: Side) -> sql.Composed:
        """Per last-modified bucket: rows, the XOR of their hashes and the newest last-modified value.
        Equal buckets on both sides mean the tables agree."""
        # OFFSET 0 keeps the planner from estimating groups from the column (it would sort, not hash)
        return sql.SQL(
            "SELECT pb, count(*), coalesce(bit_xor(h), 0), max(lm) FROM ("
            "SELECT {pb} AS pb, {h} AS h, {lm} AS lm FROM {t} WHERE {where} OFFSET 0) AS r GROUP BY pb"
        ).format(pb=self._pb(), h=self._h(), lm=self._lm(), t=side.target, where=side.where)

    def buckets_query(self, side: Side, bits: int, within: int | None) -> sql.Composed:
        """Rows and hash XOR per key bucket (of `bits` bits), in bucket order; with `within`, only of the
        rows whose bucket of `within` bits is set in %(buckets)s."""
        dirty = sql.SQL(" AND {}").format(segments.in_buckets(self._kh(), within)) if within else sql.SQL("")
        # OFFSET 0: as in partitions_query
        return sql.SQL(
            "SELECT kb, count(*), coalesce(bit_xor(h), 0) FROM ("
            "SELECT {kb} AS kb, {h} AS h FROM {t} WHERE {where}{parts}{dirty} OFFSET 0) AS r"
            " GROUP BY kb ORDER BY kb"
        ).format(
            kb=segments.bucket_of(self._kh(), bits),
            h=self._h(),
            t=side.target,
            where=side.where,
            parts=self._in_partitions(),
            dirty=dirty,
        )

    def rows_query(self, side: Side, bits: int) -> sql.Composed:
        """Key, last-modified and row hash of the rows in the buckets set in %(buckets)s, in key order."""
        order = []
        for name in self.key:
            ident = sql.Identifier(name)
            order.append(
                sql.SQL('{} COLLATE "C"').format(ident) if side.table.columns[name].category == "S" else ident
            )
        dirty = sql.SQL(" AND {}").format(segments.in_buckets(self._kh(), bits)) if bits else sql.SQL("")
        return sql.SQL(
            "SELECT {key}, {lm}, {h} FROM {t} WHERE {where}{parts}{dirty} ORDER BY {order}"
        ).format(
            parts=self._in_partitions(),
            key=sql.SQL(", ").join(sql.Identifier(k) for k in self.key),
            lm=self._lm(),
            h=self._h(),
            t=side.target,
            where=side.where,
            dirty=dirty,
            order=sql.SQL(", ").join(order),
        )


def _key_text(key: tuple[str, ...]) -> sql.Composable:
    if len(key) == 1:
        return sql.SQL("{}::text").format(sql.Identifier(key[0]))
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.Identifier(k) for k in key))


def plan_check(src: psycopg.Connection, dst: psycopg.Connection, plan: ModelPlan, rate: float) -> ModelCheck:
    tables = []
    for conn, (schema, name), role in ((src, plan.source, "source"), (dst, plan.destination, "destination")):
        table = find_table(conn, schema, name)
        if table is None:
            raise ModelError(f"{role} table {schema}.{name} does not exist")
        tables.append(table)
    source, destination = tables
    key = source.primary_key
    if not key:
        raise ModelError(f"source table {source.qualified} has no primary key")
    common = [c for c in source.columns if c in destination.columns and c not in plan.exclude]
    for needed in (*key, plan.last_modified):
        if needed not in common:
            raise ModelError(f"column {needed} is not in both tables (or is excluded)")
    columns = sorted(common)
    typed = all(
        segments.typed_hash_ok(source.columns[c].type_sql, destination.columns[c].type_sql) for c in columns
    )
    key_typed = all(
        segments.typed_hash_ok(source.columns[c].type_sql, destination.columns[c].type_sql) for c in key
    )
    where: sql.Composable = sql.SQL("TRUE")
    params: dict[str, Any] = {}
    if plan.sample_ids is not None:
        where = sql.SQL("{} = ANY(%(ids)s::text[])").format(_key_text(key))
        params = {"ids": plan.sample_ids}
    elif rate < 1:
        where = sql.SQL("('x' || left(md5({}), 8))::bit(32)::bigint < %(threshold)s").format(_key_text(key))
        params = {"threshold": int(rate * 2**32)}

    def make_side(conn: psycopg.Connection, table: Table) -> Side:
        target = sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
        return Side(conn, table, target, where, params)

    return ModelCheck(
        plan, key, columns, make_side(src, source), make_side(dst, destination), rate, typed, key_typed
    )


def _newer(lm: float | None, mark: float | None) -> bool:
    return lm is not None and mark is not None and lm > mark


def _older(dest_lm: float | None, source_lm: float | None) -> bool:
    return source_lm is not None and (dest_lm is None or dest_lm < source_lm)


@dataclass
class IntegrityWorker:
    """One integrity job; `run()` returns the process exit code."""

    config: JobConfig
    watcher: StopWatcher
    progress: ProgressReporter
    results: list[DataIntegrityResultResource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    connections: list[psycopg.Connection] = field(default_factory=list)
    current: str = ""
    rows_seen: int = 0
    _report_lock: threading.Lock = field(default_factory=threading.Lock)
    _reported: bool = False
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.watcher.on_interrupt(self._interrupt)
        self.watcher.on_hard_exit(self._hard_exit)

    def _interrupt(self) -> None:
        for conn in list(self.connections):
            if not conn.closed:
                conn.cancel_safe(timeout=1.0)

    def _hard_exit(self, request: StopRequest) -> None:
        self._finish(EXIT_STOPPED, self._report(None, request))
        logging.shutdown()
        os._exit(EXIT_STOPPED)

    def run(self) -> int:
        try:
            for dsn, side in (
                (self.config.source_dsn, "source"),
                (self.config.destination_dsn, "destination"),
            ):
                try:
                    conn = psycopg.connect(dsn, autocommit=False, application_name="datajobs-integrity")
                except psycopg.Error as exc:
                    message = f"cannot connect to the {side} database: {exc}".strip()
                    self.results = [self._error_result(p, message) for p in self.config.plans]
                    return self._finish(EXIT_FAILED, self._report("FAILED", None, message))
                conn.execute("SET TimeZone = 'UTC'")
                conn.execute("SET default_transaction_isolation = 'repeatable read'")
                conn.execute("SET default_transaction_read_only = on")
                conn.execute("SET jit = off")  # compiling costs more than it saves for these scans
                conn.execute("SET work_mem = '64MB'")  # the bucket sums hash-aggregate in memory
                # cursors are read to the end: plan them for the whole result (a sort after one scan),
                # not for their first rows (an index walk that would scan lazily, one side at a time)
                conn.execute("SET cursor_tuple_fraction = 1.0")
                conn.commit()
                self.connections.append(conn)
            src, dst = self.connections
            for index, plan in enumerate(self.config.plans):
                self.watcher.check()
                self.current = f"{plan.name} ({index + 1}/{len(self.config.plans)})"
                self.progress.update({"log_message": f"checking {self.current}"})
                self.results.append(self._check(src, dst, plan))
        except Stopped:
            return self._finish(EXIT_STOPPED, self._report(None, self.watcher.request))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            for conn in self.connections:
                conn.close()
        errors = sum(1 for r in self.results if r.error_message)
        if errors == len(self.results):
            return self._finish(EXIT_FAILED, self._report("FAILED", None))
        return self._finish(EXIT_OK, self._report("WARNING" if errors else "SUCCEEDED", None))

    def _error_result(self, plan: ModelPlan, message: str) -> DataIntegrityResultResource:
        return DataIntegrityResultResource(
            model_name=plan.name,
            is_healthy=False,
            error_message=message,
            sampling_rate=self._rate(plan),
            total_rows_compared=0,
            total_rows_stale=0,
            total_rows_pending=0,
            total_rows_missing=0,
            total_rows_incorrect=0,
            total_rows_orphaned=0,
            mismatched_partitions=[],
        )

    def _rate(self, plan: ModelPlan) -> float:
        return self.config.sampling_rate

    def _check(
        self, src: psycopg.Connection, dst: psycopg.Connection, plan: ModelPlan
    ) -> DataIntegrityResultResource:
        started = time.monotonic()
        try:
            check = plan_check(src, dst, plan, self.config.sampling_rate)
            partitions, tally, absent = self._check_rows(check)
        except ModelError as exc:
            self._rollback()
            log.error("model %s: %s", plan.name, exc)
            return self._error_result(plan, str(exc))
        except psycopg.Error as exc:
            self._rollback()
            if self.watcher.requested:
                raise Stopped(str(exc)) from exc
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error("model %s: %s", plan.name, message)
            return self._error_result(plan, f"query failed: {message}")
        self._rollback()
        if absent:
            self.notes.append(f"{plan.name}: {absent} sample id(s) in neither table")
        healthy = tally.stale == tally.missing == tally.incorrect == tally.orphaned == 0
        log.info(
            "model %s: %d compared, %d stale, %d pending, %d missing, %d incorrect, %d orphaned,"
            " %d partitions mismatched (%.1f s)",
            plan.name,
            tally.compared,
            tally.stale,
            tally.pending,
            tally.missing,
            tally.incorrect,
            tally.orphaned,
            len(partitions),
            time.monotonic() - started,
        )
        return DataIntegrityResultResource(
            model_name=plan.name,
            is_healthy=healthy,
            error_message="",
            sampling_rate=self._rate(plan),
            total_rows_compared=tally.compared,
            total_rows_stale=tally.stale,
            total_rows_pending=tally.pending,
            total_rows_missing=tally.missing,
            total_rows_incorrect=tally.incorrect,
            total_rows_orphaned=tally.orphaned,
            mismatched_partitions=partitions,
        )

    def _rollback(self) -> None:
        for conn in self.connections:
            try:
                conn.rollback()
            except psycopg.Error as exc:
                log.warning("rollback failed: %s", exc)

    def _both(self, check: ModelCheck, query: Callable[[Side], Any]) -> tuple[Any, Any]:
        """`query(side)` on both sides at once (each database scans while the other does)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="integrity")
        futures = [self._pool.submit(query, side) for side in (check.source, check.destination)]
        wait(futures)  # both, even when one fails: no thread may still use a connection afterwards
        return futures[0].result(), futures[1].result()

    def _check_rows(self, check: ModelCheck) -> tuple[list[MismatchedPartition], Tally, int]:
        """Partitions and per-row counts: per-partition sums, then key-bucket sums, then differing rows."""

        def partitions(side: Side) -> tuple[dict[int, tuple[int, int]], float | None]:
            sums, newest = {}, None
            for pb, n, h, lm in side.conn.execute(check.partitions_query(side), side.params):
                sums[int(pb)] = (int(n), int(h))
                newest = lm if newest is None or (lm is not None and lm > newest) else newest
            return sums, newest

        (source, _), (destination, newest) = self._both(check, partitions)
        self.watcher.check()
        mismatched = self._mismatched(check, source, destination)
        tally = Tally()
        if not mismatched:  # the same rows on both sides (up to a 2^-64 chance)
            tally.compared = sum(n for n, _ in source.values())
        else:
            buckets = source.keys() | destination.keys()
            differing = sorted(b for b in buckets if source.get(b) != destination.get(b))
            if len(differing) < len(buckets):
                check.only_partitions = differing
                tally.compared = sum(n for b, (n, _) in source.items() if source[b] == destination.get(b))
            rows = max(sum(sides.get(b, (0, 0))[0] for b in differing) for sides in (source, destination))
            if check.only_partitions is not None and rows <= self.config.stream_rows:
                difference = segments.everything(rows)  # few rows in the differing partitions: stream all
            else:
                difference = self._buckets(check, segments.first_bits(rows), None)
                tally.compared += difference.agreeing_rows
            while difference.dirty and difference.worth_refining(self.config.stream_rows):
                difference = self._buckets(check, difference.bits + segments.REFINE_BITS, difference)
                tally.compared += difference.agreeing_rows
            if difference.dirty:
                if check.destination.params:  # sampled: the newest row of the whole table counts
                    newest = self._newest(check)
                self._compare(check, difference, newest, tally)
        absent = 0
        if check.plan.sample_ids is not None:
            absent = len(set(check.plan.sample_ids)) - tally.compared
        return mismatched, tally, max(absent, 0)

    def _newest(self, check: ModelCheck) -> float | None:
        row = check.destination.conn.execute(
            sql.SQL("SELECT max(date_part('epoch', {})) FROM {}").format(
                sql.Identifier(check.plan.last_modified), check.destination.target
            )
        ).fetchone()
        return row[0] if row else None

    def _buckets(self, check: ModelCheck, bits: int, within: Difference | None) -> Difference:
        """Per-bucket sums on both sides (of the rows in `within`'s differing buckets), compared."""
        size = self.config.batch_size
        params = {"buckets": bytes(within.buckets)} if within else {}
        if within:
            log.info(
                "model %s: %d of %d key buckets differ (%d rows), refining to %d buckets",
                check.plan.name,
                within.dirty,
                1 << within.bits,
                within.rows,
                1 << bits,
            )
            self.progress.update(
                {"log_message": f"checking {self.current}: {within.dirty} key buckets differ, refining"}
            )

        def open_side(side: Side) -> tuple[psycopg.ServerCursor, list[Any]]:
            cur = side.conn.cursor(name="datajobs_buckets")
            cur.itersize = size
            query = check.buckets_query(side, bits, within.bits if within else None)
            cur.execute(query, check.params(side, **params))
            return cur, cur.fetchmany(size)  # the database has aggregated once the first rows are here

        def rows(cur: psycopg.ServerCursor, batch: list[Any]) -> Iterator[tuple[int, int, int]]:
            while batch:
                for b, n, h in batch:
                    yield int(b), int(n), int(h)
                self.watcher.check()
                batch = cur.fetchmany(size)

        (src_cur, src_first), (dst_cur, dst_first) = self._both(check, open_side)
        try:
            return segments.compare(rows(src_cur, src_first), rows(dst_cur, dst_first), bits)
        finally:
            src_cur.close()
            dst_cur.close()

    @staticmethod
    def _mismatched(
        check: ModelCheck, source: dict[int, tuple[int, int]], destination: dict[int, tuple[int, int]]
    ) -> list[MismatchedPartition]:
        width = check.plan.partition_seconds
        mismatched = []
        for bucket in sorted(source.keys() | destination.keys()):
            s, d = source.get(bucket, (0, 0)), destination.get(bucket, (0, 0))
            if s != d:
                lower, upper = (0, 0) if bucket == NULL_PARTITION else (bucket * width, (bucket + 1) * width)
                mismatched.append(
                    MismatchedPartition(
                        source_row_count=s[0],
                        destination_row_count=d[0],
                        last_modified_lower_bound_epoch=lower,
                        last_modified_upper_bound_epoch=upper,
                    )
                )
        return mismatched

    def _open(
        self, check: ModelCheck, side: Side, buckets: Difference
    ) -> tuple[psycopg.ServerCursor, list[Any]]:
        """The rows of the differing buckets, in key order: the cursor and its first batch (by then the
        database has scanned and sorted)."""
        cur = side.conn.cursor(name="datajobs_rows")
        cur.itersize = self.config.batch_size
        cur.execute(check.rows_query(side, buckets.bits), check.params(side, buckets=bytes(buckets.buckets)))
        return cur, cur.fetchmany(self.config.batch_size)

    def _stream(
        self, check: ModelCheck, side: Side, cur: psycopg.ServerCursor, batch: list[Any]
    ) -> Iterator[tuple[Any, ...]]:
        previous: tuple[Any, ...] | None = None
        n = len(check.key)
        while batch:
            for row in batch:
                key = tuple(row[:n])
                if previous is not None and not previous < key:
                    raise ModelError(
                        f"keys of {side.table.qualified} do not sort consistently ({previous!r}, {key!r})"
                    )
                previous = key
                yield key, row[n], row[n + 1]
            self.watcher.check()
            batch = cur.fetchmany(self.config.batch_size)

    def _compare(
        self, check: ModelCheck, buckets: Difference, high_water: float | None, tally: Tally
    ) -> None:
        """Merge-join the rows of the differing buckets by key and classify each key."""
        (src_cur, src_first), (dst_cur, dst_first) = self._both(
            check, lambda side: self._open(check, side, buckets)
        )
        try:
            self._merge(
                check,
                self._stream(check, check.source, src_cur, src_first),
                self._stream(check, check.destination, dst_cur, dst_first),
                high_water,
                tally,
            )
        finally:
            src_cur.close()
            dst_cur.close()

    def _merge(
        self,
        check: ModelCheck,
        source: Iterator[tuple[Any, ...]],
        destination: Iterator[tuple[Any, ...]],
        high_water: float | None,
        tally: Tally,
    ) -> None:
        s, d = next(source, None), next(destination, None)
        last_progress = time.monotonic()
        while s is not None or d is not None:
            tally.compared += 1
            if d is None or (s is not None and s[0] < d[0]):
                assert s is not None
                if _newer(s[1], high_water):
                    tally.pending += 1
                else:
                    tally.missing += 1
                s = next(source, None)
                continue
            if s is None or d[0] < s[0]:
                tally.orphaned += 1
                d = next(destination, None)
                continue
            if s[2] != d[2]:
                if _newer(s[1], high_water):
                    tally.pending += 1
                elif _older(d[1], s[1]):
                    tally.stale += 1
                else:
                    tally.incorrect += 1
            s, d = next(source, None), next(destination, None)
            if tally.compared % 10000 == 0 and time.monotonic() - last_progress >= 1:
                last_progress = time.monotonic()
                self.progress.update(
                    {"log_message": f"checking {self.current}: {tally.compared} rows compared"}
                )

    def _summary(self) -> str:
        unhealthy = [r for r in self.results if not r.is_healthy]
        text = f"{len(self.results)} models checked, {len(unhealthy)} unhealthy"
        details = []
        for r in unhealthy:
            if r.error_message:
                details.append(f"{r.model_name}: {r.error_message}")
            else:
                counts = [
                    f"{n} {what}"
                    for n, what in (
                        (r.total_rows_stale, "stale"),
                        (r.total_rows_missing, "missing"),
                        (r.total_rows_incorrect, "incorrect"),
                        (r.total_rows_orphaned, "orphaned"),
                    )
                    if n
                ]
                details.append(f"{r.model_name}: {', '.join(counts)}")
        if details:
            text += " (" + "; ".join(details) + ")"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text

    def _report(self, status: str | None, request: StopRequest | None, message: str = "") -> dict[str, Any]:
        log_message = message or self._summary()
        report: dict[str, Any] = {}
        if status is None:  # stopped
            reason = request.reason if request else "stopped"
            log_message = (
                f"stopped while checking {self.current or 'the first model'}: {reason}; {log_message}"
            )
            report["cancelled"] = bool(request and request.reason.startswith("cancelled"))
        else:
            report["status"] = status
        report["log_message"] = log_message
        report["data_integrity_results"] = [r.model_dump() for r in self.results]
        return report

    @staticmethod
    def _fitted(report: dict[str, Any]) -> dict[str, Any]:
        """The report for the 4096-byte termination message: every model's counts kept, partition lists
        shortened first if need be (the full report is on the pod's result annotation)."""
        fitted = copy.deepcopy(report)
        results = fitted["data_integrity_results"]
        for keep in (None, 20, 5, 1, 0):
            if keep is not None:
                for r in results:
                    r["mismatched_partitions"] = (r["mismatched_partitions"] or [])[:keep]
                fitted["log_message"] = f"{report['log_message']} (partition lists truncated in this message)"
            if len(json.dumps(fitted, separators=(",", ":"), ensure_ascii=False).encode()) <= MESSAGE_LIMIT:
                break
        return fitted

    def _finish(self, code: int, report: dict[str, Any]) -> int:
        with self._report_lock:
            if self._reported:
                return code
            self._reported = True
            self.watcher.finished()
            self.progress.close(flush_timeout=0.0 if code == EXIT_STOPPED else 1.0)
            log.info("full results: %s", json.dumps([r.model_dump() for r in self.results]))
            if code != EXIT_STOPPED:  # a stopped worker has no time to spare: its message says what it did
                publish_result(self.progress.api, report)
            write_termination_message(self._fitted(report), ("data_integrity_results",))
        return code
