"""Nothing of a real node outlives its harness: not after a clean stop, not after SIGKILL.

Processes, mounts, cgroups, iptables chains on the host, the network namespace and the egress socket
are all checked from the host's side after the harness (a separate process running a LocalCluster with a
real node) is stopped or killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datajobs.localcluster import janitor
from datajobs.localcluster.realnode import unavailable_reason
from helpers import wait_for

HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from datajobs.localcluster import LocalCluster
    from datajobs.localcluster.images import ensure_images

    images = ensure_images()
    cluster = LocalCluster(Path(sys.argv[1]), nodes=0, real_node=True)
    cluster.start()
    node = cluster.add_real_node({images.pause_ref: images.pause_tar}, images.pause_ref)
    facts = {"init": node.init_pid, "cgroup": node.cgroup, "egress": str(node.egress_socket),
             "pids": [c.pid for c in cluster.children + node.children + node.forwarders]}
    Path(sys.argv[2]).write_text(json.dumps(facts))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        cluster.stop()
    """
)


def _host_iptables() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout


def _leftovers(workdir: Path, facts: dict) -> list[str]:
    found = []
    for pid in [facts["init"], *facts["pids"]]:
        if Path(f"/proc/{pid}").exists() and not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            found.append(f"process {pid}")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(workdir) in cmdline:
                found.append(f"process {proc.name}: {cmdline[:120]}")
    mounts = Path("/proc/self/mounts").read_text()
    found += [f"mount {line}" for line in mounts.splitlines() if str(workdir) in line]
    found += [
        f"cgroup {root / facts['cgroup']}"
        for root in janitor.hierarchies()
        if (root / facts["cgroup"]).exists()
    ]
    if Path(facts["egress"]).exists():
        found.append(f"socket {facts['egress']}")
    return found


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_nothing_is_left_behind(tmp_path: Path, how: str) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"needs a real node: {reason}", pytrace=False)
    before = _host_iptables()
    workdir, facts_file = tmp_path / "cluster", tmp_path / "facts.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(workdir), str(facts_file)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "harness.log").open("w"),
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: facts_file.exists() or proc.poll() is not None, timeout=240, message="the harness's node"
        )
        assert facts_file.exists(), (tmp_path / "harness.log").read_text()[-3000:]
        facts = json.loads(facts_file.read_text())
        assert _leftovers(workdir, facts), "the probe sees nothing even while the node runs"
        assert Path(f"/proc/{facts['init']}/ns/net").exists()
        if how == "sigkill":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGINT)
        proc.wait(60)
        try:
            wait_for(lambda: not _leftovers(workdir, facts), timeout=60, message="everything gone")
        except AssertionError:
            pass  # the assertion below names what is left
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not _leftovers(workdir, facts)
    assert "KUBE-" not in _host_iptables() or "KUBE-" in before, "kubelet or kube-proxy chains on the host"
