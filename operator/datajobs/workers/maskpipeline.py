"""One table's batches over two connections: the database works on one batch while the worker masks the next.

Each batch is one transaction on one connection: `SELECT … FOR UPDATE`, masked in Python, `UPDATE`, COMMIT.
A database thread does all the I/O (write batch n, commit, read batch n+2 on the same connection) and the
worker's thread decodes the rows it read, masks them and builds the batch's UPDATE, so Python and the
database run at the same time instead of taking turns (what the database thread does in Python between
statements leaves the server idle, so it does as little as it can: it decodes only each batch's last key).
Batches are written in key order and nothing commits after a failure, so a stop or an error leaves a
masked key prefix of whole batches."""

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
    __slots__ = ("conn", "masked", "rows", "statement")

    def __init__(self, conn: psycopg.Connection, rows: int, masked: Masked, p: PreparedTable) -> None:
        self.conn, self.rows, self.masked = conn, rows, masked
        changed = masked[0]
        self.statement = p.writer.statement(changed) if changed[0] else None


_END = None  # no more batches to mask: the table is done, or the database thread failed


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
        fetched: queue.Queue[tuple[psycopg.Connection, psycopg.Cursor] | None] = queue.Queue()
        masked: queue.Queue[_Batch | None] = queue.Queue()
        self.error = None
        database = threading.Thread(
            target=self._database, args=(p, masked, fetched), name="masking-database", daemon=True
        )
        database.start()
        try:
            while True:
                self.check()
                item = fetched.get()
                if item is _END:
                    break
                conn, cursor = item
                rows = cursor.fetchall()  # the result is the cursor's: the database thread is done with it
                batch = _Batch(conn, len(rows), self.mask(p, rows), p)
                self.check()  # a stop while masking: this batch is dropped, the one being written finishes
                masked.put(batch)
        finally:
            masked.put(None)
            database.join()
        if self.error is not None:
            raise self.error

    def _database(self, p: PreparedTable, masked: queue.Queue[_Batch | None], fetched: queue.Queue) -> None:
        """Read the first batch on each connection; then write each masked batch in turn, commit, and read
        the next one on the connection it freed. Uncommitted work is rolled back when it ends."""
        after: object = None
        more = True

        def read(conn: psycopg.Connection) -> None:
            nonlocal after, more
            params = {"limit": self.batch_size, "after": after}
            cursor = conn.execute(p.select_first if after is None else p.select_next, params)
            if cursor.rowcount > 0:
                cursor.scroll(cursor.rowcount - 1, "absolute")
                after = cursor.fetchone()[0]  # type: ignore[index]
                cursor.scroll(0, "absolute")
                fetched.put((conn, cursor))
            else:
                conn.rollback()
                more = False
                fetched.put(_END)

        try:
            for conn in self.conns:
                if more:
                    read(conn)
            while (batch := masked.get()) is not None:
                # a stop that came while the previous batch was written: that batch was the one in
                # progress; this one, masked meanwhile, is dropped (a graceful stop finishes one batch)
                self.check()
                _, bad, values = batch.masked
                if batch.statement is not None:
                    batch.conn.execute(*batch.statement)
                batch.conn.commit()
                self.committed(batch.rows, bad, values)
                if more:
                    read(batch.conn)
        except BaseException as exc:  # handed to the worker's thread, which raises it
            self.error = exc
            fetched.put(_END)
        finally:
            for conn in self.conns:
                _rollback(conn)


def _rollback(conn: psycopg.Connection) -> None:
    try:
        if not conn.closed:
            conn.rollback()
    except psycopg.Error as exc:
        log.warning("rollback failed: %s", exc)
