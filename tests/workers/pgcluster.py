"""The throwaway PostgreSQL cluster (scripts/postgres.sh) as a session fixture, `postgres`.

Import the fixture into a test module or conftest: `from pgcluster import postgres`."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"
install_error: list[str] = []  # filled at collection time by tests/workers/conftest.py


@dataclass
class Postgres:
    """A running throwaway cluster: `dsn` of its `postgres` database, superuser `postgres`, trust auth."""

    dsn: str
    directory: str

    def dsn_for(self, dbname: str) -> str:
        return self.dsn.rsplit("/", 1)[0] + "/" + dbname

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.dsn_for(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A running cluster for the whole session (installed by scripts/postgres.sh if missing)."""
    if install_error:
        pytest.fail(f"PostgreSQL could not be installed: {install_error[0]}", pytrace=False)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed: {proc.stderr.strip()}", pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    pg = Postgres(values["DSN"], values["PGDIR"])
    try:
        yield pg
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", pg.directory], check=False, timeout=120)
