"""What `datajobs dev` seeds for the workers: an integrity pair with injected differences, a CRM to mask.

Pure SQL and row builders plus `seed`, which (re)creates one database, DATABASE, holding (psycopg,
imported when called; the worker tests reuse the masking schema):
- the integrity pair, model `orders` (1000 rows): the source in schema `shop`, the destination in schema
  `acme` (a Prequel export lands in the organisation's schema), with the differences in INJECTED: the
  IntegrityJob in examples/ reports exactly these counts;
- in `public`, the CRM to mask: `customers` and `orders` linked by a foreign key on a masked column, with
  a trigger that forbids updates (the masking worker disables it, then restores it), per MASKING_RULES.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DATABASE = "datajobs_dev"
SOURCE_SCHEMA, ORG_SCHEMA = "shop", "acme"
MODEL = "orders"

# --- the integrity pair -----------------------------------------------------------------------------------

ORDERS = 1000
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MISSING = (21, 22, 23)  # deleted from the destination
STALE = (131, 132)  # the destination holds an older version (older updated_at)
INCORRECT = (141, 142)  # same key and updated_at, different amount
ORPHANED = (5001,)  # only in the destination
INJECTED = {
    "total_rows_compared": ORDERS + len(ORPHANED),
    "total_rows_missing": len(MISSING),
    "total_rows_stale": len(STALE),
    "total_rows_incorrect": len(INCORRECT),
    "total_rows_orphaned": len(ORPHANED),
    "total_rows_pending": 0,
}
"""What the integrity worker must report for model `orders` (docs/worker-protocol.md, Integrity worker)."""

Row = tuple[int, str, str, dt.datetime]  # id, customer, amount, updated_at

ORDERS_TABLE = (
    "CREATE TABLE {schema}.orders (id integer PRIMARY KEY, customer text NOT NULL,"
    " amount numeric(10,2) NOT NULL, updated_at timestamptz)"
)


def source_orders() -> dict[int, Row]:
    return {
        i: (i, f"customer-{i % 37}", f"{(i * 7) % 1000}.50", BASE + dt.timedelta(days=i % 10, seconds=i))
        for i in range(1, ORDERS + 1)
    }


def destination_orders(source: dict[int, Row]) -> dict[int, Row]:
    """The destination as a sync would have left it, with the INJECTED differences."""
    rows = {i: row for i, row in source.items() if i not in MISSING}
    for i in STALE:
        _, _, amount, updated = source[i]
        rows[i] = (i, "old-name", amount, updated - dt.timedelta(seconds=60))
    for i in INCORRECT:
        _, customer, _, updated = source[i]
        rows[i] = (i, customer, "999.99", updated)
    for i in ORPHANED:
        rows[i] = (i, "ghost", "0.00", BASE + dt.timedelta(days=1, seconds=5))
    return rows


# --- the CRM to mask --------------------------------------------------------------------------------------

MASKING_SCHEMA = """
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    phone text,
    ref varchar(24) UNIQUE,
    birth date,
    created_at timestamptz,
    note text
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_email text NOT NULL,
    total numeric(10, 2) NOT NULL
);
CREATE TABLE audit (at timestamptz DEFAULT clock_timestamp(), what text);
CREATE FUNCTION forbid_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'customers are read-only'; END $$;
CREATE FUNCTION audit_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES ('note changed'); RETURN NEW; END $$;
-- fights masking (fires on every UPDATE); enabled ALWAYS, which the restore must keep
CREATE TRIGGER customers_readonly BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION forbid_update();
ALTER TABLE customers ENABLE ALWAYS TRIGGER customers_readonly;
-- fires only on UPDATE OF note, which masking never touches: must be left alone
CREATE TRIGGER customers_note_audit AFTER UPDATE OF note ON customers
    FOR EACH ROW EXECUTE FUNCTION audit_note();
"""

MASKING_FOREIGN_KEY = "ALTER TABLE orders ADD FOREIGN KEY (customer_email) REFERENCES customers (email)"
"""Added after the rows when seeding in bulk (one validation instead of a check per row)."""

DEV_CUSTOMERS, DEV_CUSTOMER_ORDERS = 200_000, 100_000
"""Sized so that one masking run takes tens of seconds on a small machine: time to watch and cancel it."""

MASKING_ROWS = """
INSERT INTO customers (id, email, phone, ref, birth, created_at, note)
SELECT i, format('Customer.%s.account@Example.com', lpad(i::text, 7, '0')),
       CASE WHEN i % 50 <> 0 THEN format('+1 (555) %s-%s', lpad((i % 1000)::text, 3, '0'),
                                         lpad((i % 10000)::text, 4, '0')) END,
       format('REF-%s-ABCDEF', lpad(i::text, 7, '0')),
       date '1960-01-01' + i % 15000,
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute',
       'note ' || i
FROM generate_series(1, {customers}) AS i;
INSERT INTO orders (id, customer_email, total)
SELECT i, format('Customer.%s.account@Example.com', lpad(((i * 7) % {customers} + 1)::text, 7, '0')),
       (i % 500) + 0.25
FROM generate_series(1, {orders}) AS i;
"""
"""Generated by the server (fast: no row crosses the wire); some phones NULL, every value unique."""


MASKING_RULES: dict[str, Any] = {
    "batchSize": 250,
    "tables": [
        {
            "table": "public.customers",
            "columns": [
                {"column": "email", "algorithm": "email"},
                {"column": "phone", "algorithm": "phone", "keepLeadingDigits": 1},
                {"column": "ref", "algorithm": "hash"},
                {"column": "birth", "algorithm": "date_shift", "maxDays": 365},
                {"column": "created_at", "algorithm": "date_shift", "maxDays": 365},
            ],
        },
        {"table": "orders", "columns": [{"column": "customer_email", "algorithm": "email"}]},
    ],
}

# --- seeding (psycopg) ------------------------------------------------------------------------------------


def create_orders(dsn: str, schema: str, rows: dict[int, Row]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(ORDERS_TABLE.format(schema=schema))
        with conn.cursor().copy(
            f"COPY {schema}.orders (id, customer, amount, updated_at) FROM STDIN"
        ) as copy:
            for row in rows.values():
                copy.write_row(row)


def seed_masking(dsn: str, customers: int, orders: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(MASKING_SCHEMA)
        # Integers formatted in (no parameters: `%` stays the SQL operator and format()'s placeholder).
        conn.execute(MASKING_ROWS.format(customers=int(customers), orders=int(orders)))
        conn.execute(MASKING_FOREIGN_KEY)
        conn.execute("ANALYZE")


def dsn_for(server_dsn: str, database: str) -> str:
    """The DSN of another database on the same server (`postgresql://user@host:port/<database>`)."""
    return server_dsn.rsplit("/", 1)[0] + "/" + database


def seed(
    server_dsn: str,
    customers: int = DEV_CUSTOMERS,
    orders: int = DEV_CUSTOMER_ORDERS,
    database: str = DATABASE,
) -> str:
    """(Re)create `database` on the server at `server_dsn`, fill it, and return its DSN."""
    import psycopg

    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    dsn = dsn_for(server_dsn, database)
    source = source_orders()
    create_orders(dsn, SOURCE_SCHEMA, source)
    create_orders(dsn, ORG_SCHEMA, destination_orders(source))
    seed_masking(dsn, customers, orders)
    return dsn
