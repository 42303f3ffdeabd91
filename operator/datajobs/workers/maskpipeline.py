"""One table's batches over two connections: the database writes batch n while the worker masks batch n+1.

Each batch is one transaction on one connection: `SELECT … FOR UPDATE` (the worker's thread), masked in
Python, then handed to a writer thread that runs its UPDATE and COMMIT. The writer takes batches in key
order and stops committing at the first failure, so a stop or an error leaves a masked key prefix of
whole batches. The worker reads the next batch as soon as a connection is free, so its Python work
overlaps the database's writing instead of alternating with it."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from datajobs.workers.maskplan import PreparedTable

log = logging.getLogger(__name__)

Masked = tuple[list[list], Counter[str], int]  # changed rows as columns, non-conforming per column, values
Committed = Callable[[int, Counter[str], int], None]  # (rows, non-conforming, values masked) of a batch


class _Batch:
    __slots__ = ("conn", "masked", "rows")

    def __init__(self, conn: psycopg.Connection, rows: int, masked: Masked) -> None:
        self.conn, self.rows, self.masked = conn, rows, masked


class Pipeline:
    """`run(table)` masks one table to its end, or raises what stopped it (Stopped, a database error)."""

    def __init__(
        self,
        conns: Sequence[psycopg.Connection],
        batch_size: int,
        check: Callable[[], None],
        mask: Callable[[PreparedTable, list[tuple[Any, ...]]], Masked],
        committed: Committed,
    ) -> None:
        self.conns = list(conns)
        self.batch_size = batch_size
        self.check = check
        self.mask = mask
        self.committed = committed
        self.error: BaseException | None = None

    def run(self, p: PreparedTable) -> None:
        free: queue.Queue[psycopg.Connection] = queue.Queue()
        for conn in self.conns:
            free.put(conn)
        work: queue.Queue[_Batch | None] = queue.Queue()
        self.error = None
        writer = threading.Thread(
            target=self._write, args=(p, work, free), name="masking-writer", daemon=True
        )
        writer.start()
        held: psycopg.Connection | None = None
        try:
            after: object = None
            while True:
                self.check()
                held = free.get()
                self._raise_writer_error()
                params = {"limit": self.batch_size, "after": after}
                rows = held.execute(p.select_first if after is None else p.select_next, params).fetchall()
                if not rows:
                    break
                masked = self.mask(p, rows)
                self.check()  # a stop while masking: this batch is dropped, the one being written finishes
                work.put(_Batch(held, len(rows), masked))
                held = None
                after = rows[-1][0]
        finally:
            if held is not None:
                _rollback(held)
            work.put(None)
            writer.join()
        self._raise_writer_error()

    def _raise_writer_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _write(self, p: PreparedTable, work: queue.Queue[_Batch | None], free: queue.Queue) -> None:
        while (batch := work.get()) is not None:
            conn = batch.conn
            try:
                if self.error is None:
                    changed, bad, values = batch.masked
                    if changed[0]:
                        conn.execute(*p.writer.statement(changed))
                    conn.commit()
                    self.committed(batch.rows, bad, values)
                else:
                    conn.rollback()  # after a failed batch nothing later may commit: the prefix stays whole
            except BaseException as exc:  # handed to the worker's thread, which raises it
                if self.error is None:
                    self.error = exc
                _rollback(conn)
            finally:
                free.put(conn)


def _rollback(conn: psycopg.Connection) -> None:
    try:
        if not conn.closed:
            conn.rollback()
    except psycopg.Error as exc:
        log.warning("rollback failed: %s", exc)
