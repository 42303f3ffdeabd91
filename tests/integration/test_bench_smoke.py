"""The benchmark suite never rots: `python -m bench.run --smoke` runs end to end and reports every figure.

No timing assertions (performance is measured, not asserted): only that each figure exists and is a
positive number, that the adapter answered every cancel, and that the table was printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from datajobs.localcluster import BinariesError, ensure_binaries

REPO = Path(__file__).resolve().parents[2]
LATENCY = ("p50_ms", "p95_ms", "p99_ms")


def _positive(doc: dict[str, Any], path: str) -> float:
    value: Any = doc
    for part in path.split("."):
        assert isinstance(value, dict) and part in value, f"{path}: no {part!r} in the results"
        value = value[part]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    assert number, f"{path} = {value!r} is not a number"
    assert value > 0, f"{path} = {value} is not positive"
    return float(value)


@pytest.mark.timeout(900)
def test_smoke_benchmark_reports_every_figure(tmp_path: Path) -> None:
    try:
        ensure_binaries()
    except BinariesError as exc:
        pytest.fail(f"control plane binaries unavailable: {exc}", pytrace=False)
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--json", str(out), "--workdir", str(tmp_path / "w")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert proc.returncode == 0, f"bench exited {proc.returncode}:\n{proc.stderr[-6000:]}"
    doc = json.loads(out.read_text())

    for path in ("meta.machine.cores", "meta.machine.memory_gib", "meta.total_s"):
        _positive(doc, path)
    for name in ("kube_apiserver", "python", "kopf"):
        assert doc["versions"][name].strip(), f"version of {name} missing"

    (round_,) = doc["rounds"]
    assert round_["n"] > 0
    for who in ("operator", "job_controller"):
        _positive(round_, f"dispatch.{who}.jobs_per_s")
        for q in LATENCY:
            _positive(round_, f"dispatch.{who}.create_to_running.{q}")
    _positive(round_, "dispatch.throughput_ratio")
    for who in ("operator", "job_controller"):
        _positive(round_, f"dispatch.cost_per_job.{who}.cpu_ms_total")
        _positive(round_, f"dispatch.cost_per_job.{who}.api_writes")
        _positive(round_, f"cancel.cost_per_cancel.{who}.api_writes")
    cancel = round_["cancel"]
    for setting in ("operator_immediate", "operator_graceful"):
        assert cancel[setting]["delete_requested"]["count"] == round_["cancel_sample"]
        for figure in ("delete_requested", "cancelled", "pod_gone_to_cancelled"):
            for q in LATENCY:
                _positive(cancel, f"{setting}.{figure}.{q}")
    for q in LATENCY:
        _positive(cancel, f"job_controller_suspend.delete_requested.{q}")
    _positive(cancel, "delete_requested_p50_ratio")

    levels = doc["adapter"]["levels"]
    assert [lv["clients"] for lv in levels] == [1, 16, 64]
    for lv in levels:
        for who in ("adapter", "raw"):
            assert lv[who]["errors"] == 0, f"{who} at {lv['clients']} clients: {lv[who]}"
            for figure in ("per_s", "p50_ms", "p99_ms"):
                _positive(lv, f"{who}.{figure}")
        _positive(lv, "throughput_ratio")

    scale = doc["scale"]
    assert [lv["jobs"] for lv in scale["levels"]] == doc["meta"]["settings"]["scale_levels"]
    for lv in scale["levels"]:
        for figure in ("idle.rss_mb", "burst.rss_peak_mb", "burst.jobs_per_s", "burst.wall_ms_per_job"):
            _positive(lv, figure)
        # idle CPU may round to 0, and CPU per job is net of idle use, but neither can be negative or missing
        assert lv["idle"]["cpu_percent"] >= 0 and "cpu_ms_per_job" in lv["burst"]
    _positive(scale, "per_job_wall_ratio")
    _positive(scale, "no_jobs.rss_mb")
    assert all("kib_per_job" in lv for lv in scale["levels"])

    phases = doc["phases"]
    assert {"dispatch-peer-30", "dispatch-operator-30", "scale"} <= set(phases)
    assert all(p["cpu_seconds"]["operator"] >= 0 for p in phases.values())
    assert len(doc["targets"]) == 7 and all(isinstance(t["met"], bool) for t in doc["targets"])

    for heading in ("## Dispatch", "## Cancel latency", "## Adapter", "## Scale", "## Targets"):
        assert heading in proc.stdout, f"table section {heading!r} missing from stdout"
