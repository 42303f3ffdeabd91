"""The integrity worker on real PostgreSQL: injected differences are found exactly, by row and partition."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import signal
from collections import defaultdict
from dataclasses import dataclass

import psycopg
import pytest

from helpers import wait_for

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DAY = 86400
N = 1000

# What each injected id is, by construction (see seed_pair).
MISSING = {21, 22, 23, 24}  # deleted from the destination
STALE = {131, 132, 133}  # destination has an older last_modified and an older value
SHIFTED = {505, 515, 525, 535, 545}  # destination copies one day older: a whole group moved partition
INCORRECT = {141, 142, 143}  # same key, different value (last_modified equal, or newer at the destination)
ORPHANED = {5001, 5002}  # destination only
PENDING = {
    990,
    991,
    992,
    993,
    994,
    2001,
}  # changed (or created: 2001) at the source after the destination's newest row

Row = tuple[int, str, str, dt.datetime]  # id, customer, amount, updated_at


def source_rows() -> dict[int, Row]:
    rows = {
        i: (i, f"customer-{i % 37}", f"{(i * 7) % 1000}.50", BASE + dt.timedelta(days=i % 10, seconds=i))
        for i in range(1, N + 1)
    }
    for i in sorted(PENDING):
        rows[i] = (i, f"changed-{i}", "1.00", BASE + dt.timedelta(days=20, seconds=i))
    return rows


def destination_rows(source: dict[int, Row]) -> dict[int, Row]:
    """The destination as a sync would have left it, with the injected differences."""
    original = {
        i: (i, f"customer-{i % 37}", f"{(i * 7) % 1000}.50", BASE + dt.timedelta(days=i % 10, seconds=i))
        for i in range(1, N + 1)
    }
    rows = {i: original[i] for i in range(1, N + 1) if i not in MISSING}  # pending ids keep their old version
    for i in STALE:
        _, _, amount, lm = source[i]
        rows[i] = (i, "old-name", amount, lm - dt.timedelta(seconds=60))
    for i in SHIFTED:
        _, customer, amount, lm = source[i]
        rows[i] = (i, customer, amount, lm - dt.timedelta(days=1))
    for i in (141, 142):
        _, customer, _, lm = source[i]
        rows[i] = (i, customer, "999.99", lm)
    _, customer, amount, lm = source[143]
    rows[143] = (143, customer.upper(), amount, lm + dt.timedelta(seconds=30))
    for i in ORPHANED:
        rows[i] = (i, "ghost", "0.00", BASE + dt.timedelta(days=1, seconds=5))
    return rows


def create_table(dsn: str, schema: str, rows: dict[int, Row], extra_column: bool = False) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
        extra = ", _synced_at timestamptz DEFAULT now()" if extra_column else ""
        conn.execute(
            f"CREATE TABLE {schema}.orders (id integer PRIMARY KEY, customer text NOT NULL,"  # type: ignore[arg-type]
            f" amount numeric(10,2) NOT NULL, updated_at timestamptz{extra})"
        )
        with conn.cursor().copy(
            f"COPY {schema}.orders (id, customer, amount, updated_at) FROM STDIN"
        ) as copy:  # type: ignore[arg-type]
            for row in rows.values():
                copy.write_row(row)


@dataclass
class Pair:
    source_dsn: str
    destination_dsn: str
    source: dict[int, Row]
    destination: dict[int, Row]


@pytest.fixture
def seeded(database) -> Pair:
    source = source_rows()
    destination = destination_rows(source)
    pair = Pair(database("src"), database("dst"), source, destination)
    create_table(pair.source_dsn, "public", source)
    create_table(pair.destination_dsn, "acme", destination, extra_column=True)
    return pair


def integrity_env(pair: Pair, **extra: str) -> dict[str, str]:
    return {
        "SOURCE_DSN": pair.source_dsn,
        "DESTINATION_DSN": pair.destination_dsn,
        "DATAJOBS_KIND": "IntegrityJob",
        "DATAJOBS_ORG_SCHEMA": "acme",
        "DATAJOBS_MODEL_IDS": json.dumps(["orders"]),
        "INTEGRITY_BATCH_SIZE": "97",  # small and odd: the merge crosses many batch boundaries
        **extra,
    }


def in_sample(key: int, rate: float) -> bool:
    return int(hashlib.md5(str(key).encode()).hexdigest()[:8], 16) < int(rate * 2**32)


def expected_partitions(pair: Pair, keep) -> list[dict]:
    """The oracle: buckets whose row sets differ, by direct comparison of the seeded rows."""
    buckets: dict[int, list[set]] = defaultdict(lambda: [set(), set()])
    for side, rows in enumerate((pair.source, pair.destination)):
        for key, row in rows.items():
            if keep(key):
                buckets[int(row[3].timestamp()) // DAY][side].add(row)
    return [
        {
            "source_row_count": len(s),
            "destination_row_count": len(d),
            "last_modified_lower_bound_epoch": b * DAY,
            "last_modified_upper_bound_epoch": (b + 1) * DAY,
        }
        for b, (s, d) in sorted(buckets.items())
        if s != d
    ]


def test_sampling_one_finds_every_injected_difference(seeded, run_worker):
    run = run_worker("integrity", integrity_env(seeded, DATAJOBS_SAMPLING_RATE="1.0"))
    assert run.wait() == 0, run.log()
    report = run.report()
    assert report["status"] == "SUCCEEDED"
    (result,) = report["data_integrity_results"]
    assert result["model_name"] == "orders" and result["sampling_rate"] == 1.0
    assert result["is_healthy"] is False and result["error_message"] == ""
    counts = {
        k: result[f"total_rows_{k}"]
        for k in ("compared", "stale", "missing", "incorrect", "orphaned", "pending")
    }
    assert counts == {
        "compared": len(seeded.source.keys() | seeded.destination.keys()),
        "stale": len(STALE | SHIFTED),
        "missing": len(MISSING),
        "incorrect": len(INCORRECT),
        "orphaned": len(ORPHANED),
        "pending": len(PENDING),
    }
    assert result["mismatched_partitions"] == expected_partitions(seeded, lambda _k: True)
    # the shifted group: day 5 lost 5 rows to day 4 at the destination (amongst other differences)
    day5 = next(
        p
        for p in result["mismatched_partitions"]
        if p["last_modified_lower_bound_epoch"] == int(BASE.timestamp()) + 5 * DAY
    )
    assert day5["source_row_count"] - day5["destination_row_count"] >= len(SHIFTED)
    assert "1 unhealthy" in report["log_message"] and "8 stale" in report["log_message"]


def test_explicit_sample_ids_check_exactly_those_rows(seeded, run_worker):
    ids = {
        "11": "ok",
        "21": "missing",
        "31": "ok",
        "131": "stale",
        "141": "incorrect",
        "5001": "orphaned",
        "990": "pending",
        "505": "stale",
        "999999": "absent",
    }
    env = integrity_env(
        seeded,
        DATAJOBS_SAMPLING_RATE="0.25",
        DATAJOBS_MODEL_SAMPLE_PRIMARY_IDS=json.dumps({"orders": sorted(ids)}),
    )
    run = run_worker("integrity", env)
    assert run.wait() == 0, run.log()
    report = run.report()
    (result,) = report["data_integrity_results"]
    assert result["total_rows_compared"] == len(ids) - 1  # 999999 is in neither table
    for category in ("stale", "missing", "incorrect", "orphaned", "pending"):
        assert result[f"total_rows_{category}"] == sum(1 for v in ids.values() if v == category), category
    assert result["mismatched_partitions"] == expected_partitions(seeded, lambda k: str(k) in ids)
    assert "1 sample id(s) in neither table" in report["log_message"]


def test_sampling_rate_checks_a_deterministic_subset(seeded, run_worker):
    rate = 0.5
    run = run_worker("integrity", integrity_env(seeded, DATAJOBS_SAMPLING_RATE=str(rate)))
    assert run.wait() == 0, run.log()
    (result,) = run.report()["data_integrity_results"]
    sampled = {k for k in seeded.source.keys() | seeded.destination.keys() if in_sample(k, rate)}
    assert 0 < len(sampled) < N
    assert result["sampling_rate"] == rate
    assert result["total_rows_compared"] == len(sampled)
    assert result["total_rows_stale"] == len((STALE | SHIFTED) & sampled)
    assert result["total_rows_missing"] == len(MISSING & sampled)
    assert result["total_rows_incorrect"] == len(INCORRECT & sampled)
    assert result["total_rows_orphaned"] == len(ORPHANED & sampled)
    assert result["total_rows_pending"] == len(PENDING & sampled)
    assert result["mismatched_partitions"] == expected_partitions(seeded, lambda k: in_sample(k, rate))


def test_a_clean_pair_is_healthy_and_mapped_models_and_errors_are_reported(database, run_worker):
    rows = {i: (i, f"c{i}", f"{i}.00", BASE + dt.timedelta(hours=i)) for i in range(1, 501)}
    pair = Pair(database("src"), database("dst"), rows, rows)
    create_table(pair.source_dsn, "public", rows)
    create_table(pair.destination_dsn, "acme", rows, extra_column=True)
    env = integrity_env(
        pair,
        DATAJOBS_MODEL_IDS=json.dumps(["orders", "orders_by_map", "nosuch"]),
        INTEGRITY_MODELS=json.dumps(
            {
                "orders_by_map": {
                    "sourceTable": "public.orders",
                    "destinationTable": "acme.orders",
                    "lastModifiedColumn": "updated_at",
                    "partitionSeconds": 3600,
                }
            }
        ),
    )
    run = run_worker("integrity", env)
    assert run.wait() == 0, run.log()
    report = run.report()
    assert report["status"] == "WARNING"  # one model could not be checked
    by_name = {r["model_name"]: r for r in report["data_integrity_results"]}
    for name in ("orders", "orders_by_map"):
        r = by_name[name]
        assert r["is_healthy"] is True and r["error_message"] == ""
        assert r["total_rows_compared"] == 500
        assert r["total_rows_stale"] == r["total_rows_missing"] == r["total_rows_incorrect"] == 0
        assert r["total_rows_orphaned"] == r["total_rows_pending"] == 0
        assert r["mismatched_partitions"] == []
    bad = by_name["nosuch"]
    assert bad["is_healthy"] is False and "does not exist" in bad["error_message"]
    assert report["log_message"].startswith("3 models checked, 1 unhealthy")


def test_unreachable_database_fails_and_missing_settings_are_a_config_error(postgres, run_worker):
    dead = postgres.dsn_for("no_such_database")
    run = run_worker(
        "integrity",
        {"SOURCE_DSN": dead, "DESTINATION_DSN": dead, "DATAJOBS_MODEL_IDS": json.dumps(["orders"])},
    )
    assert run.wait() == 1, run.log()
    report = run.report()
    assert report["status"] == "FAILED" and "cannot connect to the source database" in report["log_message"]
    assert report["data_integrity_results"][0]["is_healthy"] is False

    run = run_worker("integrity", {"DATAJOBS_MODEL_IDS": json.dumps(["orders"])})
    assert run.wait() == 2, run.log()
    assert "SOURCE_DSN is not set" in run.report()["log_message"]


def test_sigterm_stops_a_running_check_and_reports_what_was_done(database, run_worker):
    source, destination = database("src"), database("dst")
    for dsn, schema in ((source, "public"), (destination, "acme")):
        with psycopg.connect(dsn) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
            conn.execute(
                f"CREATE TABLE {schema}.orders AS SELECT i AS id, 'c' || i AS customer,"  # type: ignore[arg-type]
                f" i::numeric(10, 2) AS amount, now() - i * interval '1 minute' AS updated_at"
                f" FROM generate_series(1, 400000) i"
            )
            conn.execute(f"ALTER TABLE {schema}.orders ADD PRIMARY KEY (id)")  # type: ignore[arg-type]
    pair = Pair(source, destination, {}, {})
    run = run_worker("integrity", integrity_env(pair, DATAJOBS_MODEL_IDS=json.dumps(["orders", "orders"])))

    def streaming() -> bool:
        assert run.popen.poll() is None, f"finished before the signal:\n{run.log()}"
        rows = fetch_all(
            source,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'datajobs-integrity'"
            " AND query ~ 'hash_record_extended|hashtextextended' AND state <> 'idle'",
        )
        return rows[0][0] > 0

    wait_for(streaming, timeout=90, message="the integrity worker scanning rows")
    run.popen.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 143, run.log()
    report = run.report()
    assert report["cancelled"] is False  # no pod API here: a SIGTERM that is not a cancel
    assert report["log_message"].startswith("stopped while checking orders (1/2)")
    assert report["data_integrity_results"] == []  # the first model was not finished


def fetch_all(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]
