"""`python -m bench.foreign_pods [--pods 5000] [--jobs 200]`: the operator on a busy cluster.

One local control plane; the operator cluster-wide (no --namespace), run three times, each a fresh process
doing the same work (N IntegrityJobs from creation to SUCCEEDED, the benchmark playing the kubelet):
without foreign pods, then with P unrelated pods in ten other namespaces, the same with the operator as
before issue 12 (its pod watch without a label selector: bench/experiments/op_no_pod_selector.py), then
without foreign pods again (the peer, twice, brackets the drift of a shared machine). Per run: the
operator's CPU ms per job and its RSS after the work. The API server's audit log shows the selector the
operator's pod watch asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.procstats import cpu_seconds, rss_mb
from datajobs.crdgen import render_crds
from datajobs.localcluster import LocalCluster
from datajobs.localcluster.cluster import free_port
from datajobs.localcluster.crds import apply_crds
from datajobs.localcluster.processes import Child, spawn, stop_all
from datajobs.localcluster.rest import ApiError, Rest

log = logging.getLogger("bench.foreign_pods")
OUT = Path(__file__).resolve().parent / "out"
STATE_NS = "datajobs-system"
FOREIGN_NAMESPACES = [f"tenant-{i}" for i in range(10)]
BEFORE = Path(__file__).resolve().parent / "experiments" / "op_no_pod_selector.py"
NO_KUBELET = "bench-node-without-a-kubelet"  # foreign pods are bound here: no kubelet or scheduler work


def foreign_pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": "someone-else", "app.kubernetes.io/managed-by": "helm"}},
        "spec": {"nodeName": NO_KUBELET, "containers": [{"name": "app", "image": "example.invalid/app:1"}]},
    }


def job(name: str) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "worker", "image": "example.invalid/worker:1"}]}}
    return {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {"name": name},
        "spec": {"destinationId": "d", "modelIds": ["m"], "template": template},
    }


def finished(rest: Rest, namespace: str, pod: str) -> None:
    """Play the kubelet: the worker exited 0 with an empty report."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
    status = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": "w",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
    }
    rest.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{pod}/status",
        status,
        content_type="application/merge-patch+json",
    )


class Bench:
    def __init__(self, workdir: Path, jobs: int) -> None:
        self.workdir = workdir
        self.jobs = jobs
        self.cluster = LocalCluster(workdir / "cluster", nodes=1, pods_per_node=20000)
        self.pool = ThreadPoolExecutor(16)
        self._rest: Rest | None = None

    @property
    def rest(self) -> Rest:
        """The admin client, patient: on a shared machine a create may take seconds."""
        if self._rest is None:
            self._rest = dataclasses.replace(self.cluster.rest, timeout=120)
        return self._rest

    def start(self) -> None:
        self.cluster.start()
        apply_crds(self.rest, render_crds(), field_manager="datajobs-bench")
        for ns in [STATE_NS, *FOREIGN_NAMESPACES]:
            self.rest.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        # a Node no kubelet (and no kwok) serves: its pods stay Pending, and the pod garbage collector does
        # not delete them as orphans (it would for a node that does not exist)
        self.rest.create("/api/v1/nodes", {"metadata": {"name": NO_KUBELET, "labels": {"type": "none"}}})

    def operator(self, name: str, before: bool = False) -> tuple[Child, str]:
        liveness = free_port()
        entry = [str(BEFORE)] if before else ["-m", "datajobs.cli"]
        argv = [
            sys.executable, *entry, "run", "--kubeconfig", str(self.cluster.kubeconfig),
            "--state-namespace", STATE_NS, "--max-running", "100000", "--max-running-per-namespace", "0",
            "--bind-address", "127.0.0.1", "--liveness-port", str(liveness), "--metrics-port", "0",
        ]  # fmt: skip
        child = spawn(name, argv, log_path=self.workdir / f"{name}.log")
        url = f"http://127.0.0.1:{liveness}/healthz"
        wait(lambda: _ok(url), 120, f"{name} live", child)
        return child, url

    def one_run(self, label: str, before: bool = False) -> dict[str, Any]:
        namespace = f"jobs-{label}"
        self.rest.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        child, _ = self.operator(f"operator-{label}", before)
        try:
            settle(child.pid)
            cpu0, rss0 = cpu_seconds(child.pid), rss_mb(child.pid)
            started = time.monotonic()
            path = f"/apis/datajobs.io/v1alpha1/namespaces/{namespace}/integrityjobs"
            names = [f"job-{i:04d}" for i in range(self.jobs)]
            list(self.pool.map(lambda n: self.rest.create(path, job(n)), names))
            pods_path = f"/api/v1/namespaces/{namespace}/pods"
            done: set[str] = set()

            def all_finished() -> bool:
                running = [
                    p["metadata"]["name"]
                    for p in self.rest.get(pods_path)["items"]
                    if p.get("status", {}).get("phase") == "Running" and p["metadata"]["name"] not in done
                ]
                for pod in self.pool.map(lambda p: (finished(self.rest, namespace, p), p)[1], running):
                    done.add(pod)
                return len(done) == self.jobs

            wait(all_finished, 600, f"{self.jobs} workers finished", child, interval=0.5)
            wait(lambda: succeeded(self.rest, path) == self.jobs, 600, "every job SUCCEEDED", child)
            wall = time.monotonic() - started
            settle(child.pid)
            cpu = cpu_seconds(child.pid) - cpu0
            result = {
                "label": label,
                "jobs": self.jobs,
                "wall_s": round(wall, 1),
                "cpu_ms_per_job": round(cpu * 1000 / self.jobs, 2),
                "rss_idle_mb": round(rss0, 1),
                "rss_after_mb": round(rss_mb(child.pid), 1),
            }
            log.info("%s", result)
            return result
        finally:
            stop_all([child], timeout=15)
            self.drop_namespace(namespace)  # the next run's operator (cluster-wide) must not find these jobs

    def drop_namespace(self, namespace: str) -> None:
        self.rest.request("DELETE", f"/api/v1/namespaces/{namespace}")

        def gone() -> bool:
            try:
                self.rest.get(f"/api/v1/namespaces/{namespace}")
            except ApiError as exc:
                return exc.status == 404
            return False

        wait(gone, 600, f"namespace {namespace} deleted")

    def add_foreign_pods(self, count: int) -> float:
        started = time.monotonic()
        per_ns = count // len(FOREIGN_NAMESPACES)

        def create(i: int) -> None:
            ns = FOREIGN_NAMESPACES[i % len(FOREIGN_NAMESPACES)]
            self.rest.create(f"/api/v1/namespaces/{ns}/pods", foreign_pod(f"app-{i:05d}"))

        list(self.pool.map(create, range(per_ns * len(FOREIGN_NAMESPACES))))
        return time.monotonic() - started

    def remove_foreign_pods(self) -> None:
        for ns in FOREIGN_NAMESPACES:  # no kubelet will confirm a graceful delete: force it
            self.rest.request(
                "DELETE",
                f"/api/v1/namespaces/{ns}/pods",
                {"gracePeriodSeconds": 0},
                query={"gracePeriodSeconds": "0"},
            )
        wait(
            lambda: all(
                not self.rest.get(f"/api/v1/namespaces/{ns}/pods")["items"] for ns in FOREIGN_NAMESPACES
            ),
            300,
            "foreign pods gone",
        )

    def pod_watches(self) -> list[dict[str, Any]]:
        """Every pod list and watch the operator's processes sent, as the API server recorded it."""
        found = []
        for line in self.cluster.audit_log.read_text().splitlines():
            event = json.loads(line)
            agent = event.get("userAgent", "")
            if (
                (agent.startswith("kopf/") or agent.startswith("datajobs-operator"))
                and (event.get("objectRef") or {}).get("resource") == "pods"
                and event["verb"] in ("list", "watch")
                and event.get("stage") in ("ResponseStarted", "ResponseComplete")
            ):
                found.append(event)
        return found

    def stop(self) -> None:
        self.pool.shutdown()
        self.cluster.stop()


def succeeded(rest: Rest, path: str) -> int:
    items = rest.get(path)["items"]
    return sum(1 for j in items if (j.get("status") or {}).get("status") == "SUCCEEDED")


def settle(pid: int, below: float = 0.02, window: float = 2.0, within: float = 60.0) -> None:
    """Until the process used less than `below` of a core over `window` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window < below:
            return


def wait(probe: Any, within: float, what: str, child: Child | None = None, interval: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if probe():
                return
        except ApiError as exc:
            log.debug("%s: %s", what, exc)
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.log_tail(40)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def _ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.foreign_pods", description=__doc__)
    p.add_argument("--pods", type=int, default=5000, help="unrelated pods in other namespaces")
    p.add_argument("--jobs", type=int, default=200, help="jobs per run")
    p.add_argument("--keep", action="store_true", help="keep the state directory")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="datajobs-bench-foreign-"))
    bench = Bench(workdir, args.jobs)
    try:
        bench.start()
        runs = [bench.one_run("without-1")]
        seconds = bench.add_foreign_pods(args.pods)
        log.info("%d foreign pods created in %.1f s", args.pods, seconds)
        runs.append(bench.one_run("with"))
        watches = bench.pod_watches()  # the operator's, before the "before" run's own (without a selector)
        runs.append(bench.one_run("with-before", before=True))
        bench.remove_foreign_pods()
        runs.append(bench.one_run("without-2"))
        selectors = sorted(
            {
                tuple(parse_qs(urlsplit(e["requestURI"]).query).get("labelSelector", ["(none)"]))
                for e in watches
            }
        )
        scopes = sorted({(e["objectRef"].get("namespace") or "(cluster)") for e in watches})
        result = {
            "pods": args.pods,
            "runs": runs,
            "pod_watch_selectors": selectors,
            "pod_watch_scopes": scopes,
        }
    finally:
        bench.stop()
    OUT.mkdir(exist_ok=True)
    out = OUT / f"foreign-pods-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(report(result))  # noqa: T201 (the benchmark's output)
    print(f"\nJSON: {out}; state: {workdir if args.keep else '(removed)'}")  # noqa: T201
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(result: dict[str, Any]) -> str:
    rows = [
        "| run | foreign pods | jobs | operator CPU ms/job | RSS idle MB | RSS after MB | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        pods = result["pods"] if run["label"].startswith("with-") or run["label"] == "with" else 0
        rows.append(
            f"| {run['label']} | {pods} | {run['jobs']} | {run['cpu_ms_per_job']} | {run['rss_idle_mb']} | "
            f"{run['rss_after_mb']} | {run['wall_s']} |"
        )
    rows.append(
        "\npod lists and watches by the operator, as the API server recorded them: "
        f"labelSelector {result['pod_watch_selectors']}, scope {result['pod_watch_scopes']}"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
