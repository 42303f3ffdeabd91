"""The kept copy of a worker's last log lines: a ConfigMap owned by its job, built as plain data."""

from __future__ import annotations

from typing import Any

from datajobs.core.workerpod import LABEL_JOB, LABEL_MANAGED_BY, MANAGED_BY, short_name, worker_pod_name

KEPT_LOG_BYTES = 64 * 1024  # the tail kept per container
MAX_CONTAINERS = 8  # at most 8 x 64 KiB: well under a ConfigMap's 1 MiB
LOG_TAIL_LINES = 2000  # asked of the API server; the bytes are cut to KEPT_LOG_BYTES here
LOG_LIMIT_BYTES = 1024 * 1024  # never read more than this of one container's log
LABEL_KEPT_LOGS = "datajobs.io/kept-logs"
ANNOTATION_WHY = "datajobs.io/kept-because"


def kept_logs_name(job_name: str) -> str:
    """`<job>-worker-log`: `kubectl get configmap <job>-worker-log -o jsonpath='{.data.worker}'`."""
    return f"{worker_pod_name(job_name)}-log"


def log_tail(text: str, limit: int = KEPT_LOG_BYTES) -> str:
    """The last `limit` bytes of a log (UTF-8), starting at a line when one starts within them."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[-limit:]
    newline = cut.find(b"\n")
    if 0 <= newline < len(cut) - 1:
        cut = cut[newline + 1 :]
    return cut.decode("utf-8", "ignore")


def kept_logs_configmap(
    job: dict[str, Any], pod_name: str, pod_uid: str, why: str, logs: dict[str, str], now: str
) -> dict[str, Any]:
    """The ConfigMap holding each container's log tail; the job owns it, so it is deleted with the job."""
    meta = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": kept_logs_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                LABEL_MANAGED_BY: MANAGED_BY,
                LABEL_JOB: short_name(meta["name"]),
                LABEL_KEPT_LOGS: "true",
            },
            "annotations": {
                ANNOTATION_WHY: why,
                "datajobs.io/pod": pod_name,
                "datajobs.io/pod-uid": pod_uid,
                "datajobs.io/kept-at": now,
            },
            "ownerReferences": [
                {
                    "apiVersion": job["apiVersion"],
                    "kind": job["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {name: log_tail(text) for name, text in list(logs.items())[:MAX_CONTAINERS]},
    }
