"""A masking database (tests/workers/maskingdb.py) with gates: the worker's UPDATE of a gated row waits
until the test opens that gate, so a test can stop the worker mid-run, deterministically, at any speed.

A gate is an expression index calling a function that takes a shared advisory lock for the gated ids
while the test holds the exclusive one. An index is neither a trigger nor a constraint, so the worker
leaves it alone; advisory locks conflict with no table lock, so disabling triggers and dropping foreign
keys never waits on a gate. Only the batch that contains a gated row waits, inside its transaction."""

from __future__ import annotations

import psycopg
from maskingdb import customer, fetch, order, seed

GATE_SQL = """
CREATE FUNCTION datajobs_test_gate(id bigint, value text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF id = ANY (ARRAY[{ids}]::bigint[]) THEN PERFORM pg_advisory_xact_lock_shared(id); END IF;
    RETURN id;
END $$;
CREATE INDEX customers_gate ON customers (datajobs_test_gate(id, email));
"""


class Gates:
    """Hold closed gates on customer ids; `open(id)` lets the worker's batch with that row go on."""

    def __init__(self, dsn: str, ids: list[int]) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.closed = set()
        for gate_id in ids:
            self.conn.execute("SELECT pg_advisory_lock(%s)", (gate_id,))
            self.closed.add(gate_id)

    def open(self, gate_id: int) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (gate_id,))
        self.closed.discard(gate_id)

    def close(self) -> None:
        self.conn.close()


def seed_gated(dsn: str, customers: int, orders: int, gates: list[int]) -> Gates:
    """maskingdb's schema and rows, plus the gate index; returns the gates, all closed."""
    seed(dsn, customers, orders)
    with psycopg.connect(dsn) as conn:
        conn.execute(GATE_SQL.format(ids=", ".join(str(int(i)) for i in gates)))  # type: ignore[arg-type]
    return Gates(dsn, gates)


def waiting_at_a_gate(dsn: str) -> bool:
    """The masking worker's session is waiting for an advisory lock (a gate)."""
    rows = fetch(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'datajobs-masking'"
        " AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
    )
    return rows[0][0] > 0


def masked_prefix(dsn: str, table: str, column: str, original) -> int:
    """How many rows are masked; asserts they are exactly the first rows in key order (whole batches)."""
    rows = fetch(dsn, f"SELECT id, {column} FROM {table} ORDER BY id")
    flags = [value != original(i) for i, value in rows]
    count = sum(flags)
    assert flags == [True] * count + [False] * (len(flags) - count), (
        f"{table}: masked rows are not a key prefix"
    )
    return count


def masked_counts(dsn: str, customers: int, orders: int, batch: int) -> tuple[int, int]:
    """(customers, orders) masked: whole batches in key order, every masked column of a row together."""
    masked_customers = masked_prefix(dsn, "customers", "email", lambda i: customer(i)[1])
    assert masked_prefix(dsn, "customers", "ref", lambda i: customer(i)[3]) == masked_customers
    masked_orders = masked_prefix(dsn, "orders", "customer_email", lambda i: order(i, customers)[1])
    assert masked_orders == 0 or masked_customers == customers
    assert masked_customers % batch == 0 or masked_customers == customers, masked_customers
    assert masked_orders % batch == 0 or masked_orders == orders, masked_orders
    return masked_customers, masked_orders
