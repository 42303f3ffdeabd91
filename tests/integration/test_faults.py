"""Faults of the control plane itself: kube-apiserver and etcd SIGKILLed and restarted mid-burst, objects
deleted while the operator's watches are down, the adapter while the API server is away. These tests run
on a control plane of their own (faultkit.fault_cluster), which they crash."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from faultkit import (
    FaultCluster,
    Recorder,
    ToughKubelet,
    all_final,
    assert_correct_final_state,
    create_burst,
    tolerant,
)
from kubernetes import client
from operatorkit import SPECS, Jobs, OperatorProcess

from datajobs.adapter.keys import hash_key
from datajobs.adapter.server import AdapterConfig, ThreadedAdapter
from helpers import wait_for

JOBS = [("IntegrityJob", f"ij-{i}") for i in range(10)] + [
    ("MaskingExecution", f"mex-{i}") for i in range(10)
]
CANCELLED_AT_SUBMISSION = frozenset(name for _, name in JOBS[::4])
HELD = ("ij-1", "mex-1")  # the kubelet keeps them running: one is cancelled before the crash, one after


def metric(operator: OperatorProcess, name: str) -> float:
    """The sum of a metric's samples (0 when absent or the operator cannot answer)."""
    text = tolerant(operator.metrics) or ""
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def start_operator(fc: FaultCluster, namespace: str, tmp_path: Path, **kw: object) -> OperatorProcess:
    return OperatorProcess(fc.kubeconfig, namespace, tmp_path / "operator.log", **kw).start()  # type: ignore[arg-type]


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_sigkill_of_the_control_plane_mid_burst_leaves_every_job_correct(
    component: str, fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-{component}-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    operator = start_operator(fault_cluster, ns, tmp_path, max_running=4)
    cancelled = set(CANCELLED_AT_SUBMISSION) | set(HELD)
    try:
        with (
            Recorder(fault_cluster.api, ns) as recorder,
            ToughKubelet(jobs, keep_running=set(cancelled)) as kubelet,  # ended by their cancel only
        ):
            create_burst(jobs, JOBS)
            for kind, name in JOBS:
                if name in CANCELLED_AT_SUBMISSION:
                    jobs.cancel(kind, name)
            jobs.wait_pod_running(HELD[0], timeout=60)
            wait_for(lambda: len(kubelet.finished) >= 2, timeout=60, message="dispatch under way")
            jobs.cancel("IntegrityJob", HELD[0])  # its cancel is in flight when the crash comes
            relists = metric(operator, "datajobs_relists_total")

            met_outage: list[bool] = []

            def while_down() -> None:  # until the operator has met the outage (or 3 s)
                failed = metric(operator, "datajobs_api_retries_total")
                try:
                    wait_for(lambda: metric(operator, "datajobs_api_retries_total") > failed, timeout=3)
                    met_outage.append(True)
                except AssertionError:
                    pass  # idle at that moment: the restart is the fault then

            fault_cluster.restart(component, while_down)
            wait_for(lambda: tolerant(jobs.cancel, "MaskingExecution", HELD[1]), timeout=60, message="cancel")
            items = wait_for(lambda: all_final(jobs, JOBS), timeout=150, interval=0.5, message="jobs final")
            if met_outage:
                # the operator noticed: it listed again (its session's reconnect, or a watch relist). An
                # operator idle through the outage has nothing to notice: its watches may simply resume.
                wait_for(
                    lambda: metric(operator, "datajobs_relists_total") > relists, timeout=30, message="relist"
                )
        assert operator.exited() is None, operator.log_tail()
        assert_correct_final_state(jobs, items, cancelled, recorder)
        assert recorder.max_running["IntegrityJob"] <= 4 and recorder.max_running["MaskingExecution"] <= 4
    finally:
        operator.stop()


def test_jobs_and_pods_deleted_while_the_watches_are_down_are_dropped(
    fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-gap-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    core = client.CoreV1Api(fault_cluster.api)
    operator = start_operator(
        fault_cluster, ns, tmp_path, max_running=4, extra_args=("--max-running-per-namespace", "2")
    )
    try:
        for name in ("gap-a", "gap-b", "gap-c"):
            jobs.create("IntegrityJob", name, SPECS["IntegrityJob"]())
            if name != "gap-c":
                jobs.wait_pod_running(name, timeout=60)
        jobs.wait_status("IntegrityJob", "gap-c", "QUEUED", timeout=30)  # both of its slots are taken
        relists = metric(operator, "datajobs_relists_total")
        assert operator.popen is not None
        os.killpg(operator.popen.pid, signal.SIGSTOP)  # it sees nothing from here on
        try:
            # its watch connections die with the API server (nothing buffered in them), so when the
            # deletions come no watch of the operator's is open
            fault_cluster.restart("kube-apiserver")
            jobs.custom.delete_namespaced_custom_object(
                "datajobs.io", "v1alpha1", ns, "integrityjobs", "gap-a", propagation_policy="Background"
            )
            core.delete_namespaced_pod("gap-b-worker", ns, grace_period_seconds=0)
            wait_for(lambda: jobs.pod("gap-b") is None, timeout=30, message="gap-b's pod gone")
            # history compacted: its watches cannot resume where they stopped (410 Gone), so no DELETED
            # event for what went meanwhile will ever reach it
            fault_cluster.compact_etcd()
            # and the API server's watch cache, filled since its restart, holds those events in memory: a
            # second restart starts it after the compaction, so no watch (kopf's or the engine's own) can
            # be served from before it
            fault_cluster.restart("kube-apiserver")
        finally:
            os.killpg(operator.popen.pid, signal.SIGCONT)
        # the job whose pod vanished is not left RUNNING, and its slot goes to gap-c
        failed = jobs.wait_status("IntegrityJob", "gap-b", "FAILED", timeout=60)
        assert "disappeared" in failed["log_message"], failed
        jobs.wait_status("IntegrityJob", "gap-c", "RUNNING", timeout=60)
        # the deleted job is dropped by the relist that follows kopf's new list of jobs (gap-b's loss may be
        # found first by a reconcile that asks for its pod, so only gap-a's line is sure to be logged)
        wait_for(
            lambda: f"IntegrityJob {ns}/gap-a was deleted while unwatched" in operator.log_path.read_text(),
            timeout=30,
            message="gap-a dropped by a relist",
        )
        assert metric(operator, "datajobs_relists_total") > relists
    finally:
        operator.stop()


# --- API priority and fairness: the operator's flow limited to one seat ---------------------------------

FLOWCONTROL = ("flowcontrol.apiserver.k8s.io", "v1")


def service_account_kubeconfig(fc: FaultCluster, namespace: str, name: str, path: Path) -> str:
    """A kubeconfig for a ServiceAccount bound to cluster-admin in `namespace` only: a flow APF can limit
    (the admin certificate's group system:masters is exempt from priority and fairness)."""
    core, rbac = client.CoreV1Api(fc.api), client.RbacAuthorizationV1Api(fc.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    ca = base64.b64encode(fc.local.pki.ca_cert.read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": fc.local.server, "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": name}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def throttle(fc: FaultCluster, namespace: str, account: str) -> list[tuple[str, str]]:
    """One seat for the account's requests (Reject beyond it), its Leases on the leader-election level (as
    a cluster admin would give a controller); the objects made, to delete afterwards."""
    custom = client.CustomObjectsApi(fc.api)
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": account, "namespace": namespace}}
    everything = {
        "verbs": ["*"],
        "apiGroups": ["*"],
        "resources": ["*"],
        "namespaces": ["*"],
        "clusterScope": True,
    }
    made = []
    for plural, body in [
        (
            "prioritylevelconfigurations",
            {  # nobody's flow: its shares shrink every other level's, so ours gets exactly one seat
                "metadata": {"name": f"{namespace}-ballast"},
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 5000,
                        "lendablePercent": 100,
                        "limitResponse": {"type": "Reject"},
                    },
                },
            },
        ),
        (
            "prioritylevelconfigurations",
            {
                "metadata": {"name": f"{namespace}-one-seat"},
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 1,
                        "lendablePercent": 0,
                        "borrowingLimitPercent": 0,
                        "limitResponse": {"type": "Reject"},
                    },
                },
            },
        ),
        (
            "flowschemas",
            {
                "metadata": {"name": f"{namespace}-leases"},
                "spec": {
                    "matchingPrecedence": 400,
                    "priorityLevelConfiguration": {"name": "leader-election"},
                    "rules": [
                        {
                            "subjects": [subject],
                            "resourceRules": [
                                {
                                    "verbs": ["*"],
                                    "apiGroups": ["coordination.k8s.io"],
                                    "resources": ["leases"],
                                    "namespaces": ["*"],
                                }
                            ],
                        }
                    ],
                },
            },
        ),
        (
            "flowschemas",
            {
                "metadata": {"name": f"{namespace}-one-seat"},
                "spec": {
                    "matchingPrecedence": 500,
                    "priorityLevelConfiguration": {"name": f"{namespace}-one-seat"},
                    "distinguisherMethod": {"type": "ByUser"},
                    "rules": [
                        {
                            "subjects": [subject],
                            "resourceRules": [everything],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                        }
                    ],
                },
            },
        ),
    ]:
        custom.create_cluster_custom_object(*FLOWCONTROL, plural, body)
        made.append((plural, body["metadata"]["name"]))
    return made


def test_priority_and_fairness_429s_slow_the_operator_down_and_every_job_still_finishes(
    fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-apf-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    kubeconfig = service_account_kubeconfig(fault_cluster, ns, "operator", tmp_path / "sa.kubeconfig")
    operator = OperatorProcess(kubeconfig, ns, tmp_path / "operator.log", max_running=10).start()
    made: list[tuple[str, str]] = []
    phases: dict[str, dict[str, float]] = {}
    try:
        with ToughKubelet(jobs):
            for phase in ("free", "throttled"):
                if phase == "throttled":
                    made = throttle(fault_cluster, ns, "operator")
                names = [(kind, f"{phase}-{kind.lower()[:4]}-{i}") for kind in SPECS for i in range(6)]
                before = {
                    m: metric(operator, m)
                    for m in ("datajobs_api_requests_total", "datajobs_api_retries_total")
                }
                throttled_before = operator_429s(operator)
                started = time.monotonic()
                create_burst(jobs, names)
                wait_for(
                    lambda n=names: all_final(jobs, n),
                    timeout=240,
                    interval=0.5,
                    message=f"{phase} jobs final",
                )
                seconds = time.monotonic() - started
                requests = (
                    metric(operator, "datajobs_api_requests_total") - before["datajobs_api_requests_total"]
                )
                phases[phase] = {
                    "seconds": seconds,
                    "requests": requests,
                    "per_second": requests / seconds,
                    "429s": operator_429s(operator) - throttled_before,
                    "retries": metric(operator, "datajobs_api_retries_total")
                    - before["datajobs_api_retries_total"],
                }
        logging.getLogger(__name__).warning("APF one-seat throttling, 12 jobs per phase: %s", phases)
        free, throttled = phases["free"], phases["throttled"]
        assert throttled["429s"] > 0, phases  # the limit was really met
        assert free["429s"] == 0, phases
        # backing off: fewer requests a second than unthrottled, not a storm of instant retries
        assert throttled["per_second"] < free["per_second"], phases
        assert operator.exited() is None, operator.log_tail()
    finally:
        operator.stop()
        custom = client.CustomObjectsApi(fault_cluster.api)
        for plural, name in reversed(made):
            custom.delete_cluster_custom_object(*FLOWCONTROL, plural, name)


def operator_429s(operator: OperatorProcess) -> float:
    text = tolerant(operator.metrics) or ""
    return sum(
        float(v) for v in re.findall(r'^datajobs_api_requests_total{[^}]*code="429"[^}]*} (\S+)$', text, re.M)
    )


# --- the adapter while the API server is away -------------------------------------------------------------

ADAPTER_KEY = "fault-test-adapter-key-5d1e0b"


def call(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, object], dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def test_the_adapter_answers_503_in_the_vendor_shape_while_the_api_server_is_down_and_recovers(
    fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-adapter-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        yaml.safe_dump({"keys": [{"name": "admin", "sha256": hash_key(ADAPTER_KEY), "namespaces": ["*"]}]})
    )
    operator = start_operator(fault_cluster, ns, tmp_path, max_running=4)
    adapter = ThreadedAdapter(
        AdapterConfig(
            host="127.0.0.1",
            port=0,
            kubeconfig=fault_cluster.kubeconfig,
            namespaces=(ns,),
            api_keys_file=keys,
        )
    ).start()
    try:
        jobs.create("IntegrityJob", "ij", SPECS["IntegrityJob"]())
        jobs.create("MaskingExecution", "mex", SPECS["MaskingExecution"]())
        ij = jobs.wait_status("IntegrityJob", "ij", "RUNNING", timeout=60)
        mex = jobs.wait_status("MaskingExecution", "mex", "RUNNING", timeout=60)
        urls = {
            "prequel": (
                f"{adapter.url}/destinations/{ij['destination_id']}/data-integrity/{ij['id']}",
                {"X-API-KEY": ADAPTER_KEY},
            ),
            "delphix": (
                f"{adapter.url}/executions/{mex['executionId']}",
                {"Authorization": f"Bearer {ADAPTER_KEY}"},
            ),
        }
        for url, headers in urls.values():  # the adapter's cache has both
            wait_for(
                lambda u=url, h=headers: call("GET", u, h)[0] == 200, timeout=30, message="adapter sees jobs"
            )
        fault_cluster.local.kill_component("kube-apiserver")
        try:
            status, body, headers = call("POST", urls["prequel"][0] + "/cancel", urls["prequel"][1])
            assert (status, headers.get("Retry-After")) == (503, "1"), body
            assert body == {"status": "error", "message": body["message"], "data": None}
            status, body, headers = call("POST", urls["delphix"][0] + "/cancel", urls["delphix"][1])
            assert status == 503 and list(body) == ["errorMessage"], body
            assert call("GET", adapter.url + "/healthz", {})[0] == 200  # alive: no restart is needed
        finally:
            fault_cluster.local.start_component("kube-apiserver")
        # back on its own: the same calls succeed, and its cache follows the cancels the operator applies
        for kind, (url, headers) in urls.items():
            status, body, _ = wait_for(
                lambda u=url, h=headers: (r := call("POST", u + "/cancel", h))[0] == 200 and r,
                timeout=60,
                message=f"{kind} cancel after the API server returned",
            )
        jobs.wait_status("IntegrityJob", "ij", "CANCELLED", timeout=60)
        jobs.wait_status("MaskingExecution", "mex", "CANCELLED", timeout=60)
        wait_for(
            lambda: call("GET", urls["delphix"][0], urls["delphix"][1])[1].get("status") == "CANCELLED",
            timeout=60,
            message="the adapter's cache saw the cancel",
        )
    finally:
        adapter.stop()
        operator.stop()
