"""Children started by the local cluster die with their process group and with their parent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from datajobs.localcluster.processes import spawn, stop_all
from helpers import wait_for


def test_stop_all_kills_the_whole_process_group(tmp_path: Path) -> None:
    child = spawn("sleepers", ["sh", "-c", "sleep 300 & sleep 300 & wait"], log_path=tmp_path / "s.log")
    grandchildren = wait_for(
        lambda: len(k := psutil.Process(child.pid).children()) == 2 and k,
        timeout=10,
        message="two sleeps started",
    )
    stop_all([child], timeout=5)
    assert child.popen.returncode is not None
    wait_for(
        lambda: not any(g.is_running() and g.status() != psutil.STATUS_ZOMBIE for g in grandchildren),
        timeout=10,
        message="grandchildren gone",
    )


def test_a_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    parent_code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parents[2] / "operator")!r})
        from datajobs.localcluster.processes import spawn
        child = spawn("sleeper", ["sleep", "300"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        pid = int(
            wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=20, message="child pid")
        )
        orphan = psutil.Process(pid)
        assert orphan.is_running()
    finally:
        parent.kill()
        parent.wait()
    wait_for(
        lambda: not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE,
        timeout=10,
        message="child killed with its parent (PR_SET_PDEATHSIG)",
    )
