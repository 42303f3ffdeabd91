"""What fights an in-place UPDATE of masked columns, and how to disable and restore it exactly.

- user triggers on a masked table that fire on UPDATE of a masked column (or of any column):
  `ALTER TABLE … DISABLE TRIGGER`, restored to their exact previous mode (ENABLE / ENABLE ALWAYS /
  ENABLE REPLICA);
- foreign keys with a masked column on either side: PostgreSQL cannot disable one foreign key without
  superuser rights, so the constraint is dropped and re-created from its own definition
  (pg_get_constraintdef): `ADD … NOT VALID` (enforced again from then on), then `VALIDATE CONSTRAINT`
  in its own transaction. When the data no longer satisfies it (e.g. a run stopped half way through
  masking the two sides of a reference), the constraint stays in place NOT VALID and the report says so."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

from datajobs.workers.catalog import Table, _quote

ENABLE_CLAUSE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}

ENABLED, DISABLING, DISABLED, RESTORED, RESTORE_FAILED = (
    "enabled",
    "disabling",
    "disabled",
    "restored",
    "restore failed",
)


@dataclass
class SqlObject:
    kind: str  # "trigger" | "foreign key"
    table: str  # quoted schema.table
    name: str
    disable_sql: str
    restore_sql: tuple[str, ...]
    state: str = ENABLED
    error: str = ""
    validation_error: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {_quote(self.name)} on {self.table}"

    @property
    def may_be_disabled(self) -> bool:
        """Disabled, or its disabling may have committed just before the process was stopped."""
        return self.state in (DISABLING, DISABLED, RESTORE_FAILED)


@dataclass
class Ledger:
    """Every object the worker disabled and what became of it; read from the stop thread, hence the lock."""

    objects: list[SqlObject] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_state(self, objects: list[SqlObject], state: str, error: str = "") -> None:
        with self.lock:
            for obj in objects:
                obj.state, obj.error = state, error

    def set_validation_error(self, obj: SqlObject, error: str) -> None:
        with self.lock:
            obj.validation_error = error

    def report(self) -> dict[str, Any]:
        """`disabled`, `restored` (labels) and `leftDisabled` (label, the SQL that restores it, why)."""
        with self.lock:
            touched = [o for o in self.objects if o.state != ENABLED]
            left = []
            for obj in touched:
                if obj.may_be_disabled:
                    entry = {"object": obj.label, "restoreSql": "; ".join(obj.restore_sql)}
                    if obj.error:
                        entry["error"] = obj.error
                    left.append(entry)
            not_validated = [
                {"object": o.label, "error": o.validation_error, "validateSql": o.restore_sql[-1]}
                for o in touched
                if o.state == RESTORED and o.validation_error
            ]
            return {
                "disabled": [o.label for o in touched],
                "restored": [o.label for o in touched if o.state == RESTORED],
                "leftDisabled": left,
                "notValidated": not_validated,
            }


def find_fighting_objects(conn: psycopg.Connection, masked: list[tuple[Table, list[str]]]) -> list[SqlObject]:
    """Triggers and foreign keys that an UPDATE of the masked columns would fire or violate."""
    found: dict[tuple[str, str], SqlObject] = {}
    for table, columns in masked:
        attnums = [table.columns[c].attnum for c in columns]
        for name, enabled in conn.execute(
            """SELECT t.tgname, t.tgenabled FROM pg_trigger t
               WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND (t.tgtype & 16) <> 0
                 AND (cardinality(t.tgattr::int2[]) = 0 OR t.tgattr::int2[] && %s::int2[])
               ORDER BY t.tgname""",
            (table.oid, attnums),
        ):
            trigger, qtable = _quote(name), table.qualified
            found[("t", f"{table.oid}:{name}")] = SqlObject(
                "trigger",
                qtable,
                name,
                f"ALTER TABLE {qtable} DISABLE TRIGGER {trigger}",
                (f"ALTER TABLE {qtable} {ENABLE_CLAUSE.get(enabled, 'ENABLE TRIGGER')} {trigger}",),
            )
        for oid, name, nsp, rel, definition, validated in conn.execute(
            """SELECT c.oid, c.conname, n.nspname, r.relname, pg_get_constraintdef(c.oid), c.convalidated
               FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
               JOIN pg_namespace n ON n.oid = r.relnamespace
               WHERE c.contype = 'f' AND c.conparentid = 0 AND (
                     (c.conrelid = %(rel)s AND c.conkey && %(att)s::int2[])
                  OR (c.confrelid = %(rel)s AND c.confkey && %(att)s::int2[]))
               ORDER BY c.conname""",
            {"rel": table.oid, "att": attnums},
        ):
            qtable, constraint = f"{_quote(nsp)}.{_quote(rel)}", _quote(name)
            add = f"ALTER TABLE {qtable} ADD CONSTRAINT {constraint} {definition}"
            restore = (
                (f"{add} NOT VALID", f"ALTER TABLE {qtable} VALIDATE CONSTRAINT {constraint}")
                if validated
                else (add,)
            )
            found[("f", str(oid))] = SqlObject(
                "foreign key", qtable, name, f"ALTER TABLE {qtable} DROP CONSTRAINT {constraint}", restore
            )
    return list(found.values())
