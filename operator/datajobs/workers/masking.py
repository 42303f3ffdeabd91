"""The reference masking worker: masks columns of PostgreSQL tables in place, one batch per transaction.

Order of work: validate the rules against the catalog, count the rows, disable what would fight the
UPDATEs (sqlobjects.py), mask every table in primary-key order, restore what was disabled, report. A
graceful stop finishes the running batch (or rolls it back at half the grace period), restores, reports;
an immediate stop rolls back the running batch and leaves at once, naming what stays disabled."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from datajobs.workers import algorithms
from datajobs.workers.batchmask import ColumnMasker
from datajobs.workers.maskpipeline import Pipeline
from datajobs.workers.maskplan import PreparedTable, prepare
from datajobs.workers.progress import ProgressReporter
from datajobs.workers.protocol import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    ConfigError,
    publish_result,
    require,
    write_termination_message,
)
from datajobs.workers.rules import (
    MaskingRules,
)
from datajobs.workers.sqlobjects import (
    DISABLED,
    DISABLING,
    ENABLED,
    RESTORE_FAILED,
    RESTORED,
    Ledger,
    find_fighting_objects,
)
from datajobs.workers.stopping import IMMEDIATE, Stopped, StopRequest, StopWatcher

log = logging.getLogger(__name__)

TARGET_DSN_ENV = "TARGET_DSN"
MASKING_KEY_ENV = "MASKING_KEY"
SHRINKABLE = ("disabled", "restored", "notValidated", "leftDisabled")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Counts:
    rows_total: int = -1
    rows_masked: int = 0
    values_masked: int = 0
    non_conforming: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self) -> dict[str, int]:
        return {
            "rowsMasked": self.rows_masked,
            "rowsTotal": self.rows_total,
            "bytesProcessed": 0,
            "bytesTotal": 0,
        }


class MaskingWorker:
    """One masking execution; `run()` returns the process exit code."""

    def __init__(
        self,
        env: Mapping[str, str],
        rules: MaskingRules,
        watcher: StopWatcher,
        progress: ProgressReporter,
    ) -> None:
        self.dsn = require(env, TARGET_DSN_ENV)
        raw_key = require(env, MASKING_KEY_ENV).encode()
        self.key = algorithms.normalize_key(raw_key)
        self.masker = ColumnMasker(self.key)
        if len(raw_key) < 16:
            log.warning("%s is shorter than 16 bytes: masked values are easier to reverse", MASKING_KEY_ENV)
        self.rules = rules
        self.watcher = watcher
        self.progress = progress
        self.ledger = Ledger()
        self.counts = Counts()
        self.phase = "connect"
        self.conn: psycopg.Connection | None = None
        self.spare: psycopg.Connection | None = None  # the second connection batches take turns on
        self._report_lock = threading.Lock()
        self._reported = False
        watcher.on_interrupt(self._interrupt)
        watcher.on_hard_exit(self._hard_exit)

    # --- the stop thread's hooks ---------------------------------------------------------------------

    def _interrupt(self) -> None:
        request = self.watcher.request
        if self.phase in ("count", "disable", "batch") or (request is not None and request.mode == IMMEDIATE):
            for conn in (self.conn, self.spare):
                if conn is not None and not conn.closed:
                    log.warning("cancelling the running statement (phase %s)", self.phase)
                    conn.cancel_safe(timeout=1.0)

    def _hard_exit(self, request: StopRequest) -> None:
        self._finish(EXIT_STOPPED, self._stopped_report(request, "did not stop in time; left at once"))
        logging.shutdown()
        os._exit(EXIT_STOPPED)

    # --- the run -------------------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        try:
            self.conn = psycopg.connect(self.dsn, autocommit=False, application_name="datajobs-masking")
            self.spare = psycopg.connect(self.dsn, autocommit=False, application_name="datajobs-masking")
        except psycopg.Error as exc:
            if self.conn is not None:
                self.conn.close()
            return self._finish(EXIT_FAILED, self._failed(f"cannot connect to the target database: {exc}"))
        try:
            return self._run(started)
        finally:
            self.conn.close()
            self.spare.close()

    def _run(self, started: float) -> int:
        conn = self.conn
        assert conn is not None
        try:
            self.watcher.check()
            prepared = [prepare(conn, rule) for rule in self.rules.tables]
            self.phase = "count"
            self.progress.update(self.counts.progress())
            total = 0
            for p in prepared:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(
                        sql.Identifier(p.table.schema), sql.Identifier(p.table.name)
                    )
                ).fetchone()
                total += int(row[0]) if row else 0
            conn.rollback()
            self.counts.rows_total = total
            self.progress.update(self.counts.progress())
            self.watcher.check()
            self._disable(prepared)
            for p in prepared:
                self._mask_table(p)
        except ConfigError as exc:
            self._rollback()
            return self._finish(EXIT_CONFIG, self._failed(str(exc)))
        except Stopped:
            return self._stopped()
        except psycopg.errors.QueryCanceled as exc:
            if self.watcher.requested:
                return self._stopped()
            return self._fail_and_restore(f"{self.phase}: {exc}")
        except psycopg.Error as exc:
            return self._fail_and_restore(f"{self.phase}: {exc}")
        except Exception as exc:  # a bug must still restore what was disabled and report
            log.exception("unexpected error")
            return self._fail_and_restore(f"{self.phase}: unexpected error: {exc!r}")
        self.phase = "restore"
        self._restore()
        report = self._final_report(started)
        return self._finish(EXIT_FAILED if report["status"] == "FAILED" else EXIT_OK, report)

    def _rollback(self) -> None:
        for conn in (self.conn, self.spare):
            try:
                if conn is not None and not conn.closed:
                    conn.rollback()
            except psycopg.Error as exc:
                log.warning("rollback failed: %s", exc)

    def _disable(self, prepared: list[PreparedTable]) -> None:
        """Disable every fighting object in one transaction: all of them, or (on any error) none."""
        conn = self.conn
        assert conn is not None
        self.phase = "disable"
        objects = find_fighting_objects(conn, [(p.table, [c.name for _, c in p.columns]) for p in prepared])
        if not objects:
            conn.rollback()
            return
        self._set_lock_timeout()
        with self.ledger.lock:
            self.ledger.objects.extend(objects)
        self.ledger.set_state(objects, DISABLING)
        try:
            for obj in objects:
                log.info("disabling %s: %s", obj.label, obj.disable_sql)
                conn.execute(obj.disable_sql.encode())
            conn.commit()
        except BaseException:
            self._rollback()
            self.ledger.set_state(objects, ENABLED)
            raise
        self.ledger.set_state(objects, DISABLED)
        log.info("disabled %d object(s): %s", len(objects), ", ".join(o.label for o in objects))

    def _mask_table(self, p: PreparedTable) -> None:
        assert self.conn is not None and self.spare is not None
        self.phase = "batch"
        try:
            Pipeline(
                [self.conn, self.spare],
                self.rules.batch_size,
                self.watcher.check,
                self._mask_rows,
                self._committed,
            ).run(p)
        finally:
            self.phase = "between tables"

    def _committed(self, rows: int, bad: Counter[str], masked_values: int) -> None:
        """A batch is committed (the writer thread): count it and report progress."""
        with self.counts.lock:
            self.counts.rows_masked += rows
            self.counts.values_masked += masked_values
            self.counts.non_conforming.update(bad)
        self.progress.update(self.counts.progress())

    def _mask_rows(
        self, p: PreparedTable, rows: list[tuple[Any, ...]]
    ) -> tuple[list[list], Counter[str], int]:
        changed, nonconforming, masked_values = self.masker.mask_rows([r for r, _ in p.columns], rows)
        bad: Counter[str] = Counter()
        for (_, column), n in zip(p.columns, nonconforming, strict=True):
            if n:
                bad[f"{p.table.qualified}.{column.name}"] += n
        return changed, bad, masked_values

    def _restore(self) -> None:
        """Restore each disabled object in its own transaction, so one failure does not keep the rest off.

        A foreign key is re-created NOT VALID (enforced from then on) and validated in a second
        transaction; a failed validation leaves it in place, NOT VALID, and is reported."""
        conn = self.conn
        assert conn is not None
        self._rollback()
        for obj in [o for o in self.ledger.objects if o.state == DISABLED]:
            first, *then = obj.restore_sql
            try:
                self._set_lock_timeout()
                conn.execute(first.encode())
                conn.commit()
            except psycopg.Error as exc:
                self._rollback()
                log.error("could not restore %s: %s", obj.label, _first_line(exc))
                self.ledger.set_state([obj], RESTORE_FAILED, _first_line(exc))
                continue
            self.ledger.set_state([obj], RESTORED)
            log.info("restored %s", obj.label)
            for statement in then:
                try:
                    self._set_lock_timeout()
                    conn.execute(statement.encode())
                    conn.commit()
                except psycopg.Error as exc:
                    self._rollback()
                    log.error("%s is back but NOT VALID: %s", obj.label, _first_line(exc))
                    self.ledger.set_validation_error(obj, _first_line(exc))
                    break

    def _set_lock_timeout(self) -> None:
        assert self.conn is not None
        timeout = f"{int(self.rules.lock_timeout_seconds * 1000)}ms"
        self.conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(timeout)))

    def _left(self) -> list[dict[str, Any]]:
        return list(self.ledger.report()["leftDisabled"])

    # --- reports -------------------------------------------------------------------------------------

    def _counts_report(self) -> dict[str, Any]:
        with self.counts.lock:
            return {**self.counts.progress(), "nonConforming": sum(self.counts.non_conforming.values())}

    def _failed(self, message: str) -> dict[str, Any]:
        return {"status": "FAILED", **self._counts_report(), "message": message, **self.ledger.report()}

    def _fail_and_restore(self, message: str) -> int:
        log.error("masking failed: %s", message)
        self.phase = "restore"
        self._rollback()
        self._restore()
        ledger = self.ledger.report()
        if ledger["leftDisabled"]:
            message += f"; {len(ledger['leftDisabled'])} object(s) could not be restored"
        if ledger["notValidated"]:
            message += f"; {len(ledger['notValidated'])} foreign key(s) back NOT VALID"
        return self._finish(EXIT_FAILED, self._failed(message))

    def _final_report(self, started: float) -> dict[str, Any]:
        counts = self._counts_report()
        left = self._left()
        elapsed = time.monotonic() - started
        rate = counts["rowsMasked"] / elapsed if elapsed > 0 else 0.0
        parts = [
            f"masked {counts['rowsMasked']} of {counts['rowsTotal']} rows"
            f" in {elapsed:.1f} s ({rate:.0f} rows/s)"
        ]
        with self.counts.lock:
            non_conforming = dict(self.counts.non_conforming)
        if non_conforming:
            detail = ", ".join(f"{name}: {n}" for name, n in sorted(non_conforming.items()))
            parts.append(
                f"{sum(non_conforming.values())} values did not conform and were left unmasked ({detail})"
            )
        not_validated = self.ledger.report()["notValidated"]
        if not_validated:
            parts.append(
                f"{len(not_validated)} foreign key(s) restored NOT VALID: the masked data violates them"
            )
        if left:
            parts.append(f"{len(left)} disabled object(s) could not be restored: see leftDisabled")
        if left or not_validated:
            status = "FAILED"
        else:
            status = "WARNING" if non_conforming else "SUCCEEDED"
        return {"status": status, **counts, "message": "; ".join(parts), **self.ledger.report()}

    def _stopped_report(self, request: StopRequest | None, note: str = "") -> dict[str, Any]:
        ledger = self.ledger.report()
        mode = request.mode if request else "graceful"
        reason = request.reason if request else "stopped"
        message = f"stopped: {reason}"
        if note:
            message += f"; {note}"
        if ledger["leftDisabled"]:
            message += f"; {len(ledger['leftDisabled'])} object(s) left disabled: see leftDisabled"
        elif ledger["restored"]:
            message += f"; restored all {len(ledger['restored'])} disabled object(s)"
        if ledger["notValidated"]:
            message += f"; {len(ledger['notValidated'])} foreign key(s) back NOT VALID (see notValidated)"
        return {
            "cancelled": bool(request and request.reason.startswith("cancelled")),
            "stopMode": mode,
            **self._counts_report(),
            "message": message,
            **ledger,
        }

    def _stopped(self) -> int:
        request = self.watcher.request
        self._rollback()
        if request is None or request.mode != IMMEDIATE:
            self.phase = "restore"
            self._restore()
        return self._finish(EXIT_STOPPED, self._stopped_report(self.watcher.request))

    def _finish(self, code: int, report: dict[str, Any]) -> int:
        with self._report_lock:
            if self._reported:
                return code
            self._reported = True
            self.watcher.finished()
            self.progress.update(self.counts.progress())
            self.progress.close(flush_timeout=0.0 if code == EXIT_STOPPED else 1.0)
            if code != EXIT_STOPPED:  # a stopped worker has no time to spare: its message says what it did
                publish_result(self.progress.api, report)
            write_termination_message(report, SHRINKABLE)
        return code
