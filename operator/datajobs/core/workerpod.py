"""Builds a job's worker pod from its template (or the default worker): a pure function, no API calls."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from datajobs.models.kinds import GROUP, INTEGRITY_JOB, KINDS, KindInfo

MANAGED_BY = "datajobs-operator"
LABEL_KIND = f"{GROUP}/kind"
LABEL_JOB = f"{GROUP}/job"
LABEL_JOB_UID = f"{GROUP}/job-uid"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
WORKER_POD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"  # what the operator's pod watch asks the server for
ANNOTATION_CANCEL_MODE = f"{GROUP}/cancel-mode"
ANNOTATION_PROGRESS = f"{GROUP}/progress"
WORKER_CONTAINER = "worker"
MASKING_RULES_MOUNT = "/etc/datajobs/masking"

KIND_BY_NAME: dict[str, KindInfo] = {k.kind: k for k in KINDS}


DEFAULT_WORKER_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


@dataclass(frozen=True)
class WorkerDefaults:
    """The operator's configured default worker, used when a job has no template."""

    image: str = "datajobs-operator:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    # requests and limits: a quota'd namespace refuses pods without them, and a scheduler cannot place well
    resources: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_WORKER_RESOURCES))
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect); value "" means Exists


def parse_node_selector(text: str) -> tuple[str, str]:
    """`key=value` (a --worker-node-selector flag) -> (key, value); ValueError says what is wrong."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_toleration(text: str) -> tuple[str, str, str]:
    """`key[=value]:Effect` (a --worker-toleration flag) -> (key, value, effect)."""
    rest, sep, effect = text.rpartition(":")
    key, _, value = rest.partition("=")
    if not sep or not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"expected KEY[=VALUE]:NoSchedule|PreferNoSchedule|NoExecute, got {text!r}")
    return key, value, effect


def toleration(key: str, value: str, effect: str) -> dict[str, str]:
    if value:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def short_name(name: str, suffix: str = "", limit: int = 63) -> str:
    """`name+suffix` if it fits in `limit` characters, else a truncated name plus a stable hash."""
    full = name + suffix
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - len(suffix) - 9]}-{digest}{suffix}"


def worker_pod_name(job_name: str) -> str:
    return short_name(job_name, "-worker", limit=253)


def worker_env(
    kind: KindInfo, meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]
) -> list[dict]:
    """The job's parameters as DATAJOBS_* variables (docs/worker-protocol.md)."""
    params = {
        k: v
        for k, v in spec.items()
        if k not in ("template", "cancelRequested", "connectionSecretName", "startDeadlineSeconds")
    }

    def text(value: Any) -> str:
        if value is None:
            return ""
        return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else str(value)

    env = {
        "DATAJOBS_KIND": kind.kind,
        "DATAJOBS_JOB_NAME": meta["name"],
        "DATAJOBS_NAMESPACE": meta["namespace"],
        "DATAJOBS_JOB_UID": meta["uid"],
        "DATAJOBS_SPEC": json.dumps(params, sort_keys=True),
    }
    if kind is INTEGRITY_JOB:
        env |= {
            "DATAJOBS_DESTINATION_ID": text(spec.get("destinationId")),
            "DATAJOBS_ORG_SCHEMA": text(spec.get("orgSchema")),
            "DATAJOBS_SAMPLING_RATE": text(spec.get("samplingRate")),
            "DATAJOBS_MODEL_IDS": text(spec.get("modelIds") or []),
            "DATAJOBS_MODEL_SAMPLE_PRIMARY_IDS": text(spec.get("modelSamplePrimaryIds") or {}),
        }
    else:
        env |= {
            "DATAJOBS_EXECUTION_ID": text(status.get("executionId")),
            "DATAJOBS_JOB_ID": text(spec.get("jobId")),
            "DATAJOBS_CONNECTOR_TYPE": text(spec.get("connectorType")),
            "DATAJOBS_SOURCE_CONNECTOR_ID": text(spec.get("sourceConnectorId")),
            "DATAJOBS_TARGET_CONNECTOR_ID": text(spec.get("targetConnectorId")),
        }
    items = [{"name": k, "value": v} for k, v in env.items()]
    items.append({"name": "DATAJOBS_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    return items


def default_template(kind: KindInfo, defaults: WorkerDefaults) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": WORKER_CONTAINER,
                "image": defaults.image,
                "imagePullPolicy": defaults.image_pull_policy,
                "args": ["worker", kind.worker],
                "resources": copy.deepcopy(defaults.resources),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if defaults.service_account:
        pod_spec["serviceAccountName"] = defaults.service_account
    if defaults.node_selector:
        pod_spec["nodeSelector"] = dict(defaults.node_selector)
    if defaults.tolerations:
        pod_spec["tolerations"] = [toleration(*t) for t in defaults.tolerations]
    return {"spec": pod_spec}


def build_worker_pod(
    kind_name: str,
    body: dict[str, Any],
    defaults: WorkerDefaults,
) -> dict[str, Any]:
    """The worker pod for a job: its template (or the default worker) plus what the protocol requires."""
    kind = KIND_BY_NAME[kind_name]
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    template = copy.deepcopy(spec.get("template") or default_template(kind, defaults))
    tmeta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}

    labels = dict(tmeta.get("labels") or {})
    labels |= {
        LABEL_KIND: kind.kind,
        LABEL_JOB: short_name(meta["name"]),
        LABEL_JOB_UID: meta["uid"],
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    pod_spec["restartPolicy"] = "Never"
    containers = pod_spec.get("containers") or []
    worker = next(
        (c for c in containers if c.get("name") == WORKER_CONTAINER), containers[0] if containers else None
    )
    if worker is not None:
        ours = worker_env(kind, meta, spec, status)
        names = {e["name"] for e in ours}
        worker["env"] = [e for e in worker.get("env") or [] if e.get("name") not in names] + ours
        worker.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
        if spec.get("connectionSecretName"):
            worker["envFrom"] = [
                *(worker.get("envFrom") or []),
                {"secretRef": {"name": spec["connectionSecretName"]}},
            ]
        if spec.get("maskingRulesConfigMap"):
            volume = {"name": "datajobs-masking-rules", "configMap": {"name": spec["maskingRulesConfigMap"]}}
            pod_spec["volumes"] = [*(pod_spec.get("volumes") or []), volume]
            mount = {"name": "datajobs-masking-rules", "mountPath": MASKING_RULES_MOUNT, "readOnly": True}
            worker["volumeMounts"] = [*(worker.get("volumeMounts") or []), mount]

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": worker_pod_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": kind.api_version,
                    "kind": kind.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }
