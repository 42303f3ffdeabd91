"""Worker tests: a throwaway PostgreSQL (scripts/postgres.sh) for the session, and running a worker process.

`postgres` (session) starts the cluster; `database()` (function) creates a fresh, empty database and returns
its DSN. `run_worker(kind, env)` runs `python -m datajobs.cli worker <kind>` with a private termination-log
file and returns a WorkerRun (popen, report(), log())."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pgcluster import SCRIPT, Postgres, install_error, postgres  # noqa: F401 (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark worker tests that need the control plane `integration`; install PostgreSQL (if missing) now,
    before any per-test timeout starts ticking."""
    here = Path(__file__).resolve().parent
    for item in items:
        if (
            "cluster" in getattr(item, "fixturenames", ())
            and here in Path(str(item.fspath)).resolve().parents
        ):
            item.add_marker(pytest.mark.integration)
    if not any("postgres" in getattr(i, "fixturenames", ()) for i in items):
        return
    proc = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        install_error.append(proc.stderr.strip() or f"exit code {proc.returncode}")


@pytest.fixture
def database(postgres: Postgres) -> Callable[..., str]:  # noqa: F811 (the imported fixture)
    """`database(prefix="t")`: a fresh empty database; returns its DSN."""
    return postgres.create_database


@dataclass
class WorkerRun:
    popen: subprocess.Popen[bytes]
    termination_log: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"worker did not exit within {timeout} s; log:\n{self.log()}") from None

    def report(self) -> dict[str, Any]:
        text = self.termination_log.read_text()
        assert text, f"no termination message; log:\n{self.log()}"
        assert len(text.encode()) <= 4096
        return dict(json.loads(text))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def run_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerRun]]:
    """`run_worker(kind, env, args=())`: start the worker process (not waited for)."""
    started: list[WorkerRun] = []

    def start(kind: str, env: dict[str, str], args: tuple[str, ...] = ()) -> WorkerRun:
        n = len(started)
        term, log_path = tmp_path / f"termination-{n}.log", tmp_path / f"worker-{n}.log"
        term.write_text("")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAJOBS_", "KUBERNETES_"))}
        full_env = {**base, "DATAJOBS_TERMINATION_LOG": str(term), **env}
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "datajobs.cli", "worker", kind, *args],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
        run = WorkerRun(popen, term, log_path, full_env)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.popen.poll() is None:
            run.popen.kill()
            run.popen.wait()
