"""`kubectl datajobs logs` on the real node: the worker's log through the API server and the kubelet, live
(-f) while it runs; once the pod is gone, the copy the operator kept."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading

import pytest
from operatorkit import integrity_spec
from pluginkit import Plugin, kubeconfig_in_namespace

from helpers import kubectl_exe

pytestmark = pytest.mark.timeout(900)  # the first real-node test of a session builds and loads the image

# The worker: two lines, then a numbered tick a second until it is stopped.
SCRIPT = """
import itertools, time
print("checking model orders")
print("orders: 1000 rows compared, 0 stale")
for n in itertools.count():
    time.sleep(1)
    print(f"tick {n}")
"""


class Follower:
    """A `kubectl datajobs logs -f` process whose output lines arrive in a queue."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_line(self, timeout: float = 60) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return f"<nothing in {timeout:g} s; exit code {self.proc.poll()}>"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)


def test_logs_stream_from_the_pod_then_come_from_the_kept_copy(
    real_node, cluster, namespace, run_operator, jobs, tmp_path
):
    plugin = Plugin(kubeconfig_in_namespace(cluster.kubeconfig, namespace, tmp_path / "kubeconfig"))
    run_operator()
    spec = integrity_spec()
    pod = spec["template"]["spec"]
    pod.update(real_node.placement)
    pod["containers"] = [
        {
            "name": "worker",
            "image": real_node.image,
            "imagePullPolicy": "Never",
            "command": ["/opt/datajobs/bin/python", "-u", "-c", SCRIPT],
        }
    ]
    jobs.create("IntegrityJob", "logged", spec)
    assert jobs.wait_pod_running("logged", timeout=120).spec.node_name == real_node.name

    follower = Follower([kubectl_exe(), "datajobs", "logs", "ij/logged", "-f"], plugin.env)
    try:
        assert follower.next_line() == "checking model orders\n"
        assert follower.next_line() == "orders: 1000 rows compared, 0 stale\n"
        ticks = [follower.next_line() for _ in range(3)]
        numbers = [int(t.removeprefix("tick ")) for t in ticks]
        assert numbers == list(range(numbers[0], numbers[0] + 3)), ticks  # printed one by one, as they come
        assert follower.proc.poll() is None  # still following: the worker runs on
    finally:
        follower.stop()

    whole = plugin.ok("logs", "ij/logged").out.splitlines()
    assert whole[:2] == ["checking model orders", "orders: 1000 rows compared, 0 stale"]
    assert whole[-1].startswith("tick ")
    (last,) = plugin.ok("logs", "ij", "logged", "--tail", "1").out.splitlines()
    assert last.startswith("tick ")
    stamped = plugin.ok("logs", "ij/logged", "--timestamps").out.splitlines()
    assert (
        stamped[0].endswith(" checking model orders") and stamped[0][:4].isdigit() and "T" in stamped[0][:20]
    )

    plugin.ok("cancel", "ij/logged", "--wait")
    assert jobs.pod("logged") is None
    # The pod is gone: the copy the operator kept of its log before deleting it (ConfigMap logged-worker-log).
    kept = plugin.ok("logs", "ij/logged").out.splitlines()
    assert kept[:2] == ["checking model orders", "orders: 1000 rows compared, 0 stale"], kept
    assert kept[-1].startswith("tick ") and len(kept) >= len(whole)  # it ran on after our last look
    (kept_last,) = plugin.ok("logs", "ij/logged", "--tail=1").out.splitlines()
    assert kept_last == kept[-1]
    # Without a kept copy (deleted here), the plugin says why there is no log.
    jobs.core.delete_namespaced_config_map("logged-worker-log", namespace)
    gone = plugin("logs", "ij/logged")
    assert gone.code == 1
    assert gone.err.strip() == "error: the worker pod of ij/logged is gone and no kept copy of its log exists"
