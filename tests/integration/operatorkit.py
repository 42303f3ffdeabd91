"""Test support for the operator: run `datajobs run` as a real process, play the kubelet, handle jobs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from helpers import wait_for

GROUP, VERSION = "datajobs.io", "v1alpha1"
PLURALS = {"IntegrityJob": "integrityjobs", "MaskingExecution": "maskingexecutions"}
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
TERMINAL = {"SUCCEEDED", "WARNING", "FAILED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OperatorProcess:
    """`datajobs run` scoped to one namespace (which also holds its executionId counter), or with
    `cluster_wide` watching every namespace (the counter still in that one)."""

    kubeconfig: str
    namespace: str
    log_path: Path
    max_running: int = 10
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    cluster_wide: bool = False
    popen: subprocess.Popen[bytes] | None = None
    liveness_port: int = 0
    metrics_port: int = 0

    def start(self, timeout: float = 60) -> OperatorProcess:
        self.liveness_port, self.metrics_port = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "datajobs.cli",
            "run",
            "--kubeconfig",
            self.kubeconfig,
            *(() if self.cluster_wide else ("--namespace", self.namespace)),
            "--state-namespace",
            self.namespace,
            "--max-running",
            str(self.max_running),
            "--bind-address",
            "127.0.0.1",
            "--liveness-port",
            str(self.liveness_port),
            "--metrics-port",
            str(self.metrics_port),
            # one namespace per test: its jobs may take every slot unless a test asks for a share
            *(
                ()
                if any("per-namespace" in a for a in self.extra_args)
                else ("--max-running-per-namespace=0",)
            ),
            *self.extra_args,
        ]
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **self.env}
        )
        wait_for(self._alive, timeout=timeout, message=f"operator did not become live; log: {self.log_path}")
        return self

    def _alive(self) -> bool:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise AssertionError(f"operator exited with {self.popen.returncode}; log:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup runs, as in a node crash."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Jobs:
    """Create, read and patch jobs and play the kubelet for their worker pods, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.ns = namespace

    def create(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], body)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name)

    def list(self, kind: str) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind])["items"]

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return self.get(kind, name).get("status") or {}

    def cancel(self, kind: str, name: str, **request: Any) -> dict[str, Any]:
        """What `kubectl patch --type merge -p '{"spec":{"cancelRequested":{...}}}'` sends."""
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURALS[kind], name, {"spec": {"cancelRequested": request}}
        )

    def wait_status(self, kind: str, name: str, *values: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(kind, name)).get("status") in values and s,
            timeout=timeout,
            message=f"{kind} {name} never reached {values}",
        )

    def wait_cancel_evaluated(self, kind: str, name: str, timeout: float = 15) -> dict[str, Any]:
        """The job's status once the operator has written its CancelRequest verdict."""
        return wait_for(
            lambda: condition(s := self.status(kind, name), "CancelRequest") and s,
            timeout=timeout,
            message=f"cancel of {kind} {name} never evaluated",
        )

    def pod(self, job_name: str) -> client.V1Pod | None:
        try:
            return self.core.read_namespaced_pod(f"{job_name}-worker", self.ns)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def pods(self) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(
            self.ns, label_selector="app.kubernetes.io/managed-by=datajobs-operator"
        ).items

    def wait_pod_running(self, job_name: str, timeout: float = 30) -> client.V1Pod:
        return wait_for(
            lambda: (p := self.pod(job_name)) is not None and p.status.phase == "Running" and p,
            timeout=timeout,
            message=f"worker pod of {job_name} never Running",
        )

    def finish_pod(self, job_name: str, exit_code: int = 0, message: str | dict[str, Any] = "") -> None:
        """Play the kubelet: the worker container terminated with this exit code and termination message."""
        if isinstance(message, dict):
            message = json.dumps(message)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        body = {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "restartCount": 0,
                        "image": "worker",
                        "imageID": "",
                        "state": {"terminated": terminated},
                    }
                ],
            }
        }
        self.core.patch_namespaced_pod_status(f"{job_name}-worker", self.ns, body)

    def report_progress(self, job_name: str, progress: dict[str, Any]) -> None:
        """What a running worker does (docs/worker-protocol.md): annotate its own pod."""
        self.core.patch_namespaced_pod(
            f"{job_name}-worker",
            self.ns,
            {"metadata": {"annotations": {"datajobs.io/progress": json.dumps(progress)}}},
        )

    def events(self, name: str) -> list[client.CoreV1Event]:
        return self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)


def worker_template(grace_seconds: int = 3) -> dict[str, Any]:
    return {
        "spec": {
            "terminationGracePeriodSeconds": grace_seconds,
            "containers": [{"name": "worker", "image": "example.invalid/worker:1"}],
        }
    }


def integrity_spec(dest: str = "dest-1", **extra: Any) -> dict[str, Any]:
    return {"destinationId": dest, "modelIds": ["orders"], "template": worker_template(), **extra}


def masking_spec(job_id: int = 7, **extra: Any) -> dict[str, Any]:
    return {"jobId": job_id, "connectorType": "DATABASE", "template": worker_template(), **extra}


SPECS = {"IntegrityJob": integrity_spec, "MaskingExecution": masking_spec}
ENDED = {"IntegrityJob": "ended_at", "MaskingExecution": "endTime"}
STARTED = {"IntegrityJob": "started_at", "MaskingExecution": "startTime"}


# --- pytest fixtures (import them into a test module to use them) ------------------------------------

import pytest  # noqa: E402


@pytest.fixture
def run_operator(cluster, namespace, crds, tmp_path):
    """Start `datajobs run` for the test's namespace: run_operator(max_running=..., env=...)."""
    started: list[OperatorProcess] = []

    def start(**kwargs: Any) -> OperatorProcess:
        proc = OperatorProcess(
            cluster.kubeconfig, namespace, tmp_path / f"operator-{len(started)}.log", **kwargs
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def jobs(kube_api, namespace) -> Jobs:
    return Jobs(kube_api, namespace)


class PodRecorder:
    """Watches worker pods in a namespace and records every pod ever created, by its job's name."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        from kubernetes import watch

        self.core = client.CoreV1Api(api)
        self.ns = namespace
        self.created: set[str] = set()
        self.terminating: dict[
            str, client.V1Pod
        ] = {}  # job name -> the pod as first seen with a deletionTimestamp
        self.deleted: set[str] = set()
        self._watch = watch.Watch()
        listing = self.core.list_namespaced_pod(namespace)
        self.created |= {p.metadata.labels.get("datajobs.io/job", "") for p in listing.items}
        self._rv = listing.metadata.resource_version
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._stream()
        except Exception:  # the stream is closed under us by stop()
            if not self._stopped:
                raise

    def _stream(self) -> None:
        for event in self._watch.stream(
            self.core.list_namespaced_pod,
            self.ns,
            resource_version=self._rv,
            label_selector="app.kubernetes.io/managed-by=datajobs-operator",
        ):
            pod = event["object"]
            job = pod.metadata.labels.get("datajobs.io/job", "")
            self.created.add(job)
            if pod.metadata.deletion_timestamp is not None:
                self.terminating.setdefault(job, pod)
            if event["type"] == "DELETED":
                self.deleted.add(job)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


class Kubelet:
    """Plays the kubelet for every Running worker pod not marked to stay: it finishes them with exit 0."""

    def __init__(self, jobs: Jobs, keep_running: set[str] | None = None) -> None:
        self.jobs = jobs
        self.keep_running = keep_running if keep_running is not None else set()
        self.finished: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pod in self.jobs.pods():
                job = pod.metadata.labels.get("datajobs.io/job", "")
                if (
                    pod.status.phase == "Running"
                    and not pod.metadata.deletion_timestamp
                    and job not in self.keep_running
                    and pod.metadata.name not in self.finished
                ):
                    try:
                        self.jobs.finish_pod(job, 0)
                        self.finished.add(pod.metadata.name)
                    except client.ApiException:
                        pass  # deleted meanwhile
            self._stop.wait(0.05)


import threading  # noqa: E402
