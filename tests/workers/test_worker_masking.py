"""The masking worker on real PostgreSQL: every configured column masked, nothing else, deterministically."""

from __future__ import annotations

import datetime as dt
import re

import psycopg
from maskingdb import customer, fetch, foreign_keys, masking_env, order, seed, trigger_states, write_rules
from psycopg import sql

from datajobs.workers import algorithms

CUSTOMERS, ORDERS = 1200, 900
EMAIL = re.compile(r"^[A-Z][a-z]{7}\.[0-9]{7}\.[a-z]{7}@Example\.com$")


def test_full_run_masks_every_configured_column_and_restores_triggers_and_foreign_keys(
    database, run_worker, tmp_path
):
    dsn = database("mask")
    seed(dsn, CUSTOMERS, ORDERS, bad_phone_every=397)  # 3 phones are "n/a": non-conforming
    triggers_before, fks_before = trigger_states(dsn), foreign_keys(dsn)
    assert triggers_before == {"customers_readonly": "A", "customers_note_audit": "O"}

    run = run_worker("masking", masking_env(dsn, write_rules(tmp_path / "rules.yaml")))
    assert run.wait() == 0, run.log()
    report = run.report()

    assert report["status"] == "WARNING"
    assert report["rowsMasked"] == report["rowsTotal"] == CUSTOMERS + ORDERS
    assert report["nonConforming"] == 3 and "3 values did not conform" in report["message"]
    assert report["disabled"] == [
        'trigger "customers_readonly" on "public"."customers"',
        'foreign key "orders_customer_email_fkey" on "public"."orders"',
    ]
    assert report["restored"] == report["disabled"] and report["leftDisabled"] == []
    # restored exactly: the ALWAYS trigger is ALWAYS again; the foreign key is back and validated
    assert trigger_states(dsn) == triggers_before
    assert foreign_keys(dsn) == fks_before and fks_before["orders_customer_email_fkey"][1] is True
    assert fetch(dsn, "SELECT count(*) FROM audit") == [(0,)]  # the UPDATE OF note trigger never fired

    rows = {
        r[0]: r for r in fetch(dsn, "SELECT id, email, phone, ref, birth, created_at, note FROM customers")
    }
    assert len(rows) == CUSTOMERS
    for i, (_, email, phone, ref, birth, created, note) in rows.items():
        orig = customer(i, bad_phone_every=397)
        assert note == orig[6]  # not configured: unchanged
        assert email != orig[1] and EMAIL.match(email), email
        if orig[2] is None or orig[2] == "n/a":
            assert phone == orig[2]
        else:
            assert (
                phone != orig[2]
                and phone.startswith("+1 (")
                and re.sub(r"\d", "9", phone) == re.sub(r"\d", "9", orig[2])
            )
        assert ref != orig[3] and len(ref) == len(orig[3]) and re.fullmatch(r"[A-Z]{3}-\d{7}-[A-Z]{6}", ref)
        shift = (birth - orig[4]).days
        assert shift != 0 and abs(shift) <= 365
        assert created - orig[5] == dt.timedelta(days=shift)  # a row's dates move together
    orders = fetch(dsn, "SELECT id, customer_email, total FROM orders ORDER BY id")
    assert len(orders) == ORDERS
    masked_emails = {r[1] for r in rows.values()}
    for i, email, total in orders:
        orig = order(i, CUSTOMERS)
        assert str(total) == orig[2] and email != orig[1]
        assert email in masked_emails  # the same address masked the same way in both tables


def test_same_input_and_key_give_the_same_output_and_another_key_does_not(database, run_worker, tmp_path):
    rules = write_rules(tmp_path / "rules.yaml", batchSize=333)
    dsns = [database("det"), database("det"), database("det")]
    keys = ["key-one-0123456789abcdef", "key-one-0123456789abcdef", "key-two-0123456789abcdef"]
    for dsn, key in zip(dsns, keys, strict=True):
        seed(dsn, 600, 300)
        run = run_worker("masking", masking_env(dsn, rules, key=key))
        assert run.wait() == 0, run.log()
        assert run.report()["status"] == "SUCCEEDED"
    query = "SELECT id, email, phone, ref, birth, created_at, note FROM customers ORDER BY id"
    first, second, other = (fetch(dsn, query) for dsn in dsns)
    assert first == second
    assert len(first) == 600
    differing = sum(1 for a, b in zip(first, other, strict=True) if a[1:4] != b[1:4])
    assert differing == 600


def test_a_foreign_key_the_masked_data_no_longer_satisfies_is_back_not_valid_and_fails(
    database, run_worker, tmp_path
):
    dsn = database("fk")
    seed(dsn, 300, 200)
    # masking only the referencing side breaks the reference: the restore's VALIDATE must say so
    rules = {"tables": [{"table": "orders", "columns": [{"column": "customer_email", "algorithm": "email"}]}]}
    run = run_worker("masking", masking_env(dsn, write_rules(tmp_path / "rules.yaml", rules)))
    assert run.wait() == 1, run.log()
    report = run.report()
    assert report["status"] == "FAILED" and report["rowsMasked"] == 200
    fk = 'foreign key "orders_customer_email_fkey" on "public"."orders"'
    assert report["disabled"] == report["restored"] == [fk] and report["leftDisabled"] == []
    (bad,) = report["notValidated"]
    assert bad["object"] == fk and "violates foreign key" in bad["error"]
    assert (
        bad["validateSql"] == 'ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "orders_customer_email_fkey"'
    )
    assert "restored NOT VALID" in report["message"]
    # back in place and enforced for new rows, but not validated
    assert foreign_keys(dsn)["orders_customer_email_fkey"][1] is False
    assert trigger_states(dsn)["customers_readonly"] == "A"  # never touched: customers is not masked


def test_bad_rules_are_a_configuration_error_and_change_nothing(database, run_worker, tmp_path):
    dsn = database("bad")
    seed(dsn, 50, 10)
    before = fetch(dsn, "SELECT * FROM customers ORDER BY id")
    cases = {
        "the key column id cannot be masked": {
            "tables": [{"table": "customers", "columns": [{"column": "id", "algorithm": "hash"}]}]
        },
        "table public.nope does not exist": {
            "tables": [{"table": "nope", "columns": [{"column": "x", "algorithm": "hash"}]}]
        },
        "date_shift needs a date": {
            "tables": [{"table": "customers", "columns": [{"column": "email", "algorithm": "date_shift"}]}]
        },
        "tables: Field required": {"batchSize": 10},
    }
    for n, (expected, rules) in enumerate(cases.items()):
        run = run_worker("masking", masking_env(dsn, write_rules(tmp_path / f"rules-{n}.yaml", rules)))
        assert run.wait() == 2, run.log()
        report = run.report()
        assert report["status"] == "FAILED" and expected in report["message"], report
    assert fetch(dsn, "SELECT * FROM customers ORDER BY id") == before
    assert trigger_states(dsn)["customers_readonly"] == "A"


def test_a_failing_batch_stops_the_run_with_only_the_batches_before_it_committed(
    database, run_worker, tmp_path
):
    """Batches overlap (one written while the next is masked); a failure still leaves a whole-batch prefix."""
    dsn = database("fail")
    key = "test-masking-key-0123456789"
    refs = {i: f"ACC-{i:05d}" for i in range(1, 701)}
    poisoned = algorithms.hash_identifier(algorithms.normalize_key(key.encode()), refs[250])
    with psycopg.connect(dsn) as conn:
        refused = sql.SQL("CHECK (ref <> {})").format(sql.Literal(poisoned))  # row 250's masked value
        conn.execute(
            sql.SQL("CREATE TABLE accounts (id bigint PRIMARY KEY, ref text NOT NULL {})").format(refused)
        )
        with conn.cursor().copy("COPY accounts (id, ref) FROM STDIN") as copy:
            for i, ref in refs.items():
                copy.write_row((i, ref))
    rules = {
        "batchSize": 100,
        "tables": [{"table": "accounts", "columns": [{"column": "ref", "algorithm": "hash"}]}],
    }
    run = run_worker("masking", masking_env(dsn, write_rules(tmp_path / "rules.yaml", rules), key=key))
    assert run.wait() == 1, run.log()
    report = run.report()
    assert report["status"] == "FAILED" and "check constraint" in report["message"], report
    rows = fetch(dsn, "SELECT id, ref FROM accounts ORDER BY id")
    masked = [ref != refs[i] for i, ref in rows]
    assert masked == [True] * 200 + [False] * 500  # batches 1-2 committed; 3 failed; none after it
    assert report["rowsMasked"] == 200
