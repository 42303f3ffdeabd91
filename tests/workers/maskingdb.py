"""A masking test database: customers and orders linked by a foreign key on a masked column, with triggers.

The schema is the one `datajobs dev` seeds (datajobs.devdata); the rows are written here, row by row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import yaml

from datajobs.devdata import MASKING_FOREIGN_KEY, MASKING_RULES, MASKING_SCHEMA

SCHEMA = MASKING_SCHEMA + MASKING_FOREIGN_KEY + ";\n"

BASE_DATE = dt.date(1960, 1, 1)
BASE_TIME = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def customer(i: int, bad_phone_every: int = 0) -> tuple[Any, ...]:
    phone = f"+1 (555) {i % 1000:03d}-{i % 10000:04d}"
    if bad_phone_every and i % bad_phone_every == 0:
        phone = "n/a"
    return (
        i,
        f"Customer.{i:07d}.account@Example.com",
        phone if i % 50 else None,  # some NULLs: they stay NULL and are not non-conforming
        f"REF-{i:07d}-ABCDEF",
        BASE_DATE + dt.timedelta(days=i % 15000),
        BASE_TIME + dt.timedelta(minutes=i),
        f"note {i}",
    )


def order(i: int, customers: int) -> tuple[Any, ...]:
    return (i, f"Customer.{(i * 7) % customers + 1:07d}.account@Example.com", f"{i % 500}.25")


def seed(dsn: str, customers: int, orders: int, bad_phone_every: int = 0) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        with conn.cursor().copy(
            "COPY customers (id, email, phone, ref, birth, created_at, note) FROM STDIN"
        ) as copy:
            for i in range(1, customers + 1):
                copy.write_row(customer(i, bad_phone_every))
        with conn.cursor().copy("COPY orders (id, customer_email, total) FROM STDIN") as copy:
            for i in range(1, orders + 1):
                copy.write_row(order(i, customers))
        conn.execute("ANALYZE")


RULES: dict[str, Any] = MASKING_RULES
"""The rules `datajobs dev` runs: one copy, in the product."""


def write_rules(path: Path, rules: dict[str, Any] | None = None, **overrides: Any) -> Path:
    path.write_text(yaml.safe_dump({**(rules or RULES), **overrides}))
    return path


def fetch(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def trigger_states(dsn: str) -> dict[str, str]:
    rows = fetch(dsn, "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal")
    return {name: str(state) for name, state in rows}


def foreign_keys(dsn: str) -> dict[str, tuple[str, bool]]:
    rows = fetch(
        dsn, "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint WHERE contype = 'f'"
    )
    return {name: (definition, validated) for name, definition, validated in rows}


def masking_env(dsn: str, rules: Path, key: str = "test-masking-key-0123456789") -> dict[str, str]:
    return {
        "TARGET_DSN": dsn,
        "MASKING_KEY": key,
        "DATAJOBS_MASKING_RULES": str(rules),
        "DATAJOBS_KIND": "MaskingExecution",
        "DATAJOBS_JOB_ID": "7",
        "DATAJOBS_EXECUTION_ID": "1",
    }
