"""`python -m bench.experiments.store_memory`: bytes the operator's store holds per running job and its pod.

The objects are the dispatch benchmark's IntegrityJobs and the worker pods the operator builds for them,
as the API server returns them once Running (managedFields, defaulted spec, status), each decoded from its
own JSON like a watch event; tracemalloc counts what the store keeps of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from typing import Any

from bench.objects import integrity_job
from datajobs.controller.store import Store
from datajobs.core.lifecycle import JobFacts, PodFacts, decide
from datajobs.core.workerpod import WorkerDefaults, build_worker_pod

NOW = "2026-12-02T05:00:00.000001Z"
MANAGED = [{"manager": "bench", "operation": "Update", "apiVersion": "v1", "time": NOW[:19] + "Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}}]  # fmt: skip


def job(i: int) -> dict[str, Any]:
    body = integrity_job(f"o-{i:05d}")
    meta = body["metadata"] | {"namespace": "bench-op", "uid": f"uid-{i:08d}-0000-4000-8000-000000000000",
                               "resourceVersion": str(100_000 + i), "generation": 1,
                               "creationTimestamp": NOW[:19] + "Z", "managedFields": MANAGED}  # fmt: skip
    body["metadata"] = meta
    first = decide(JobFacts("IntegrityJob", meta, body["spec"], None, None, True, NOW, submitted=NOW)).status
    pod = PodFacts(name=f"o-{i:05d}-worker", phase="Running")
    body["status"] = decide(JobFacts("IntegrityJob", meta, body["spec"], first, pod, False, NOW)).status
    return body


def pod(body: dict[str, Any], i: int) -> dict[str, Any]:
    p = build_worker_pod("IntegrityJob", body, WorkerDefaults())
    p["metadata"] |= {"uid": f"pod-{i:08d}-0000-4000-8000-000000000000", "resourceVersion": str(200_000 + i),
                      "creationTimestamp": NOW[:19] + "Z", "managedFields": MANAGED * 3}  # fmt: skip
    p["spec"] |= {"nodeName": "kwok-node-0", "schedulerName": "default-scheduler",
                  "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
                  "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                  "securityContext": {}, "serviceAccountName": "default",
                  "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 300}]}  # fmt: skip
    started = NOW[:19] + "Z"
    p["status"] = {
        "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.0.0.2", "qosClass": "Burstable",
        "startTime": started,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": started, "lastProbeTime": None}
                       for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
        "containerStatuses": [{"name": "worker", "ready": True, "restartCount": 0, "image": "x",
                               "imageID": "", "started": True, "state": {"running": {"startedAt": started}}}],
    }  # fmt: skip
    return p


def measure(count: int) -> float:
    events = [(json.dumps(b), json.dumps(pod(b, i))) for i, b in enumerate(job(i) for i in range(count))]
    store = Store()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for job_text, pod_text in events:  # each decoded on its own, like a watch event
        store.put_job("IntegrityJob", json.loads(job_text))
        store.put_pod(json.loads(pod_text))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(store.jobs) == count and len(store.pods) == count
    return held / count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.experiments.store_memory", description=__doc__)
    p.add_argument("--jobs", type=int, default=5000)
    args = p.parse_args(argv)
    sys.stdout.write(
        f"store: {measure(args.jobs):.0f} bytes per running job and its pod ({args.jobs} jobs)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
