"""The reference workers side by side with the tools people use instead, on the same tables, in one run.

Integrity: our worker vs reladiff's hashdiff (the `bench` extra: `pip install -e '.[bench]'`), two DSNs,
on `orders` tables of each size, healthy and with 0.1 % (spread, clustered) and 5 % of rows differing.
Masking: our worker vs one plain in-database UPDATE of the same columns (psql), each on its own copy of
the seeded `customers` table, the tools taking turns run by run. Every tool runs as a process (as in a
pod): wall clock from start to exit, start-up included, and its peak RSS (os.wait4); the median of
--repeat runs. Each result is checked (the differences found, the rows masked) before its time counts.
A throwaway PostgreSQL (scripts/postgres.sh; fsync off, as for tests) unless --dsn names one.

    .venv/bin/python -m bench.workers_bench --rows 1000000                # one size
    nice -n 10 .venv/bin/python -m bench.workers_bench --rows 1000000 --rows 10000000
    ... --before /path/to/an/older/checkout   # also run that tree's workers ("before" figures)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.pgbackends import BackendCpu

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
VACUUM ANALYZE {schema}.orders;
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
VACUUM ANALYZE customers;
"""

# The peer of the masking worker: the same columns, rewritten by built-in hash expressions in one UPDATE.
PLAIN_UPDATE = """
UPDATE customers SET
  email = left(md5(email), 12) || '@example.com',
  phone = '+1 ' || lpad((abs(hashtext(phone)) % 10000000000)::text, 10, '0'),
  ref = upper(left(md5(ref), 20)),
  birth = birth + (abs(hashtext(id::text)) % 730 - 365)
"""


def scenarios(rows: int) -> dict[str, tuple[str, int]]:
    """name -> (destination rows that differ, as a WHERE clause; how many rows that is)."""
    mid, width = rows // 2, max(rows // 1000, 1)
    return {
        "healthy": ("FALSE", 0),
        "0.1% spread": ("id % 1000 = 7", len(range(7, rows + 1, 1000))),
        "0.1% clustered": (f"id >= {mid} AND id < {mid + width}", width),
        "5% spread": ("id % 20 = 3", len(range(3, rows + 1, 20))),
    }


def create_database(admin_dsn: str, prefix: str, template: str | None = None) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')  # type: ignore[arg-type]
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def run_process(argv: list[str], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """Run one tool to its end: exit code, wall seconds, peak RSS (MiB)."""
    started = time.perf_counter()
    with log_path.open("wb") as out:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        _, status, usage = os.wait4(popen.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{argv[:4]} exited {code}; log: {log_path}")
    return {
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def run_worker(kind: str, env: dict[str, str], workdir: Path, source_tree: Path | None) -> dict[str, Any]:
    term = workdir / f"{kind}.termination-log"
    term.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAJOBS_", "KUBERNETES_"))}
    if source_tree is not None:
        base["PYTHONPATH"] = str(source_tree / "operator")
    full = {**base, "DATAJOBS_TERMINATION_LOG": str(term), **env}
    result = run_process(
        [sys.executable, "-m", "datajobs.cli", "worker", kind], full, workdir / f"{kind}.log"
    )
    return {**result, "report": json.loads(term.read_text())}


def median_of(repeat: int, once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return summary([once() for _ in range(repeat)])


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run (its wall seconds), how many runs, the highest peak RSS."""
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    cpu = {k: statistics.median(r[k] for r in runs) for k in ("cpu_s", "db_cpu_s") if k in best}
    return {
        **best,
        **cpu,
        "seconds": statistics.median(r["seconds"] for r in runs),
        "runs": len(runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def bench_integrity(admin: str, rows: int, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    source, destination = create_database(admin, "bench_src"), create_database(admin, "bench_dst")
    for dsn, schema in ((source, "public"), (destination, "acme")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in ORDERS.format(schema=schema, rows=rows).split(";\n"):
                if statement.strip():
                    conn.execute(statement)  # type: ignore[arg-type]
    reladiff = shutil.which("reladiff", path=str(Path(sys.executable).parent))
    if reladiff is None:
        raise SystemExit("reladiff is not installed: pip install -e '.[bench]'")
    results = []
    for name, (where, differing) in scenarios(rows).items():
        if args.scenario and name not in args.scenario:
            continue
        with psycopg.connect(destination, autocommit=True) as conn:
            conn.execute(f"UPDATE acme.orders SET amount = amount + 1 WHERE {where}")  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE acme.orders")
        env = {
            "SOURCE_DSN": source,
            "DESTINATION_DSN": destination,
            "DATAJOBS_ORG_SCHEMA": "acme",
            "DATAJOBS_MODEL_IDS": json.dumps(["orders"]),
            "DATAJOBS_SAMPLING_RATE": "1.0",
        }
        trees = {"ours": None, **({"ours before": args.before} if args.before else {})}
        for label, tree in trees.items():
            log.info("integrity %s rows, %s: %s …", rows, name, label)
            r = median_of(args.repeat, lambda tree=tree, env=env: run_worker("integrity", env, workdir, tree))
            (model,) = r.pop("report")["data_integrity_results"]
            assert model["total_rows_compared"] == rows and model["total_rows_incorrect"] == differing, model
            results.append({"rows": rows, "scenario": name, "tool": label, **r})
        argv = [
            reladiff,
            source,
            "orders",
            destination,
            "acme.orders",
            "-k",
            "id",
            "-t",
            "updated_at",
            "-c",
            "customer",
            "-c",
            "amount",
            "--stats",
            "--json",
        ]
        out = workdir / "reladiff.log"
        log.info("integrity %s rows, %s: reladiff …", rows, name)
        r = median_of(
            args.repeat,
            lambda argv=argv, out=out: run_process(argv, {**os.environ, "COLUMNS": "100000"}, out),
        )
        text = out.read_text()
        stats = json.loads(text[text.index("{") :].replace("\n", ""))
        assert stats["updated"] == differing and stats["exclusive_A"] == stats["exclusive_B"] == 0, stats
        results.append({"rows": rows, "scenario": name, "tool": "reladiff hashdiff", **r})
        with psycopg.connect(destination, autocommit=True) as conn:
            conn.execute(f"UPDATE acme.orders SET amount = amount - 1 WHERE {where}")  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE acme.orders")
    return results


def psql() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql")) or [Path(shutil.which("psql") or "psql")]
    return str(found[-1])


def bench_masking(admin: str, rows: int, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    template = create_database(admin, "bench_mask_tmpl")
    with psycopg.connect(template, autocommit=True) as conn:
        for statement in CUSTOMERS.format(rows=rows).split(";\n"):
            if statement.strip():
                conn.execute(statement)  # type: ignore[arg-type]
    template_name = template.rsplit("/", 1)[1]
    rules = workdir / "rules.yaml"
    columns = [
        {"column": "email", "algorithm": "email"},
        {"column": "phone", "algorithm": "phone"},
        {"column": "ref", "algorithm": "hash"},
        {"column": "birth", "algorithm": "date_shift"},
    ]
    rules.write_text(
        yaml.safe_dump({"batchSize": args.mask_batch, "tables": [{"table": "customers", "columns": columns}]})
    )
    key = secrets.token_hex(16)

    def worker(tree: Path | None) -> dict[str, Any]:
        target = create_database(admin, "bench_mask", template_name)
        env = {"TARGET_DSN": target, "MASKING_KEY": key, "DATAJOBS_MASKING_RULES": str(rules)}
        with BackendCpu(admin, target.rsplit("/", 1)[1]) as backends:
            r = run_worker("masking", env, workdir, tree)
        r["db_cpu_s"] = backends.seconds
        report = r.pop("report")
        assert report["status"] == "SUCCEEDED" and report["rowsMasked"] == rows, report
        drop(admin, target)
        return r

    def plain() -> dict[str, Any]:
        target = create_database(admin, "bench_mask", template_name)
        with BackendCpu(admin, target.rsplit("/", 1)[1]) as backends:
            r = run_process(
                [psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-c", PLAIN_UPDATE],
                dict(os.environ),
                workdir / "plain.log",
            )
        r["db_cpu_s"] = backends.seconds
        drop(admin, target)
        return r

    tools: dict[str, Callable[[], dict[str, Any]]] = {"ours": lambda: worker(None)}
    if args.before:
        tools["ours before"] = lambda: worker(args.before)
    tools["plain UPDATE"] = plain
    # Round-robin (ours, before, plain; again …): on a shared machine each tool's runs see the same load.
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in tools}
    for n in range(args.repeat):
        for label, once in tools.items():
            log.info("masking %s rows: %s (run %d of %d) …", rows, label, n + 1, args.repeat)
            runs[label].append(once())
            last = runs[label][-1]
            log.info(
                "  %.2f s wall, CPU %.2f s tool + %.2f s database",
                last["seconds"],
                last["cpu_s"],
                last["db_cpu_s"],
            )
    return [{"rows": rows, "scenario": "4 columns", "tool": label, **summary(runs[label])} for label in tools]


def drop(admin: str, dsn: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{dsn.rsplit("/", 1)[1]}"')  # type: ignore[arg-type]


PEERS = {"integrity": "reladiff hashdiff", "masking": "plain UPDATE"}


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one line per tool and case, with its speed relative to the peer of the same case."""
    lines = [
        "| worker | rows | case | tool | wall s | rows/s | peak RSS MiB | speed vs peer | CPU s tool + db |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        peer = next(
            p
            for p in results
            if p["worker"] == r["worker"]
            and p["rows"] == r["rows"]
            and p["scenario"] == r["scenario"]
            and p["tool"] == PEERS[r["worker"]]
        )
        ratio = peer["seconds"] / r["seconds"]
        cpu = f"{r['cpu_s']:.2f} + {r['db_cpu_s']:.2f}" if "db_cpu_s" in r else ""
        lines.append(
            f"| {r['worker']} | {r['rows']:,} | {r['scenario']} | {r['tool']} | {r['seconds']:.2f}"
            f" | {r['rows'] / r['seconds']:,.0f} | {r['peak_rss_mib']:.0f} | {ratio:.2f}x | {cpu} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, action="append", help="rows per table (repeatable; default 20000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median counts (default 3)")
    parser.add_argument("--only", choices=["integrity", "masking"], default=None)
    parser.add_argument("--scenario", action="append", help="integrity cases to run (default all)")
    parser.add_argument("--mask-batch", type=int, default=5000, help="masking rows per transaction")
    parser.add_argument("--before", type=Path, default=None, help="also run the workers of this checkout")
    parser.add_argument("--dsn", default=None, help="use this PostgreSQL (admin DSN) instead of starting one")
    parser.add_argument("--json", type=Path, default=None, help="default bench/out/workers-<rows>.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    sizes = args.rows or [20_000]
    directory, admin = None, args.dsn
    if admin is None:
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"scripts/postgres.sh start failed: {proc.stderr.strip()}")
        values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        admin, directory = values["DSN"], values["PGDIR"]
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="datajobs-bench-") as tmp:
            for rows in sizes:
                for name, bench in (("integrity", bench_integrity), ("masking", bench_masking)):
                    if args.only in (None, name):
                        results += [{"worker": name, **r} for r in bench(admin, rows, args, Path(tmp))]
    finally:
        if directory:
            subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False)
    sys.stdout.write(table(results) + "\n")
    sys.stdout.write(
        "wall: process start to exit (start-up included), median of"
        f" {args.repeat}; speed vs peer = peer wall / this wall; PostgreSQL fsync off\n"
    )
    path = args.json or REPO_ROOT / "bench" / "out" / f"workers-{'-'.join(map(str, sizes))}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "workers",
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "results": results,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
