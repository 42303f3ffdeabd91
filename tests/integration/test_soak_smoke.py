"""The soak (`python -m bench.soak`) in short: jobs created, finished and cancelled without pause for
30 s end with no stuck job and no leaked pod; the operator's and adapter's RSS are reported, not judged
(30 s say nothing about a leak: the 30-minute run in bench/RESULTS.md does)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from datajobs.localcluster import BinariesError, ensure_binaries

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_a_short_soak_leaves_no_stuck_job_and_no_leaked_pod(tmp_path: Path) -> None:
    try:
        ensure_binaries()
    except BinariesError as exc:
        pytest.fail(f"control plane binaries unavailable: {exc}", pytrace=False)
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--duration", "30", "--rate", "2", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert out.exists(), f"soak exited {proc.returncode} without results:\n{proc.stderr[-4000:]}"
    doc = json.loads(out.read_text())
    logging.getLogger(__name__).warning("soak: %s", proc.stdout.strip())
    assert doc["stuck_jobs"] == 0 and doc["leaked_pods"] == 0 and doc["jobs_left"] == 0, doc
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert doc["jobs_created"] >= 30, doc
    # every path was taken: finished by the "kubelet", cancelled through the adapter and by a patch
    assert doc["finished"] > 0 and doc["cancelled_http"] > 0 and doc["cancelled_patch"] > 0, doc
    assert doc["errors"] == 0, doc
    for who in ("operator", "adapter"):
        assert doc["rss"][who]["first_mb"] > 0 and doc["rss"][who]["last_mb"] > 0
