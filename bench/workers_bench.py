"""Benchmark of the reference workers: rows/s of `datajobs worker integrity` and `datajobs worker masking`.

Starts a throwaway PostgreSQL (scripts/postgres.sh; fsync off, as for tests), seeds it server-side with
generate_series, runs each worker as a real process (as in a pod: the same command line and environment),
and reports wall-clock rows/s (process start to exit, so interpreter start-up is included) and the
worker's peak RSS (os.wait4), which shows memory stays bounded as the row count grows.

    .venv/bin/python -m bench.workers_bench --rows 1000000     # JSON: bench/out/workers-1000000.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "postgres.sh"
log = logging.getLogger("workers_bench")

ORDERS = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE {schema}.orders (
    id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12, 2) NOT NULL,
    updated_at timestamptz NOT NULL
);
INSERT INTO {schema}.orders
SELECT i, 'customer-' || (i % 9973), (i % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '7 seconds'
FROM generate_series(1, {rows}) AS i;
ANALYZE {schema}.orders;
"""

CUSTOMERS = """
CREATE TABLE customers (
    id bigint PRIMARY KEY, email text NOT NULL, phone text, ref text NOT NULL, birth date, note text
);
INSERT INTO customers
SELECT i, 'customer.' || lpad(i::text, 8, '0') || '.account@example.com',
       '+1 (555) ' || lpad((i % 1000)::text, 3, '0') || '-' || lpad((i % 10000)::text, 4, '0'),
       'REF-' || lpad(i::text, 8, '0') || '-ABCDEF', date '1950-01-01' + (i % 20000), 'note ' || i
FROM generate_series(1, {rows}) AS i;
ANALYZE customers;
"""


def create_database(admin_dsn: str, prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def run_worker(kind: str, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """Run the worker process; its exit code, wall seconds, peak RSS and termination message."""
    term = workdir / f"{kind}.termination-log"
    term.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAJOBS_", "KUBERNETES_"))}
    log_path = workdir / f"{kind}.log"
    started = time.perf_counter()
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "datajobs.cli", "worker", kind],
            env={**base, "DATAJOBS_TERMINATION_LOG": str(term), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        _, status, usage = os.wait4(popen.pid, 0)
    seconds = time.perf_counter() - started
    popen.returncode = os.waitstatus_to_exitcode(status)
    if popen.returncode != 0:
        raise SystemExit(f"{kind} worker exited {popen.returncode}; log: {log_path}")
    return {
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "report": json.loads(term.read_text()),
    }


def bench_integrity(admin_dsn: str, rows: int, batch: int, workdir: Path) -> dict[str, Any]:
    source, destination = create_database(admin_dsn, "bench_src"), create_database(admin_dsn, "bench_dst")
    for dsn, schema in ((source, "public"), (destination, "acme")):
        with psycopg.connect(dsn) as conn:
            conn.execute(ORDERS.format(schema=schema, rows=rows))
    with psycopg.connect(destination) as conn:  # 0.1 % of rows differ: realistic, and exercises every path
        conn.execute("UPDATE acme.orders SET amount = amount + 1 WHERE id % 1000 = 7")
    env = {
        "SOURCE_DSN": source,
        "DESTINATION_DSN": destination,
        "DATAJOBS_ORG_SCHEMA": "acme",
        "DATAJOBS_MODEL_IDS": json.dumps(["orders"]),
        "DATAJOBS_SAMPLING_RATE": "1.0",
        "INTEGRITY_BATCH_SIZE": str(batch),
    }
    result = run_worker("integrity", env, workdir)
    (model,) = result["report"]["data_integrity_results"]
    assert model["total_rows_compared"] == rows, model
    assert model["total_rows_incorrect"] == len(range(7, rows + 1, 1000)), model
    return {"worker": "integrity", "rows": rows, **{k: v for k, v in result.items() if k != "report"}}


def bench_masking(admin_dsn: str, rows: int, batch: int, workdir: Path) -> dict[str, Any]:
    target = create_database(admin_dsn, "bench_mask")
    with psycopg.connect(target) as conn:
        conn.execute(CUSTOMERS.format(rows=rows))
    rules = workdir / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "batchSize": batch,
                "tables": [
                    {
                        "table": "customers",
                        "columns": [
                            {"column": "email", "algorithm": "email"},
                            {"column": "phone", "algorithm": "phone"},
                            {"column": "ref", "algorithm": "hash"},
                            {"column": "birth", "algorithm": "date_shift"},
                        ],
                    }
                ],
            }
        )
    )
    env = {"TARGET_DSN": target, "MASKING_KEY": secrets.token_hex(16), "DATAJOBS_MASKING_RULES": str(rules)}
    result = run_worker("masking", env, workdir)
    report = result["report"]
    assert report["status"] == "SUCCEEDED" and report["rowsMasked"] == rows, report
    inner = re.search(r"\((\d+) rows/s\)", report["message"])
    return {
        "worker": "masking",
        "rows": rows,
        "seconds": result["seconds"],
        "peak_rss_mib": result["peak_rss_mib"],
        "worker_reported_rows_per_s": int(inner.group(1)) if inner else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=20_000, help="rows per table (default 20000: a smoke run)"
    )
    parser.add_argument("--batch-size", type=int, default=5000, help="integrity fetch / masking batch size")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write the results here (default bench/out/workers-<rows>.json)",
    )
    parser.add_argument("--dsn", default=None, help="use this PostgreSQL (admin DSN) instead of starting one")
    parser.add_argument("--only", choices=["integrity", "masking"], default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    directory = None
    admin_dsn = args.dsn
    if admin_dsn is None:
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"scripts/postgres.sh start failed: {proc.stderr.strip()}")
        values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        admin_dsn, directory = values["DSN"], values["PGDIR"]
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="datajobs-bench-") as tmp:
            for name, bench in (("integrity", bench_integrity), ("masking", bench_masking)):
                if args.only and args.only != name:
                    continue
                log.info("%s: %d rows …", name, args.rows)
                result = bench(admin_dsn, args.rows, args.batch_size, Path(tmp))
                result["rows_per_s"] = round(result["rows"] / result["seconds"])
                results.append(result)
    finally:
        if directory:
            subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False)

    header = f"{'worker':<10} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r['worker']:<10} {r['rows']:>10} {r['seconds']:>8.1f} {r['rows_per_s']:>9}"
            f" {r['peak_rss_mib']:>5.0f} MiB"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.write(
        "rows/s: wall clock of the worker process (start-up included);"
        " PostgreSQL on this machine, fsync off\n"
    )
    if args.json is None:
        args.json = REPO_ROOT / "bench" / "out" / f"workers-{args.rows}.json"
    if results:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "workers",
            "cpus": os.cpu_count(),
            "batch_size": args.batch_size,
            "results": results,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
