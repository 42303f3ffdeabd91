"""The operator's settings: one documented dataclass, filled from `datajobs run` flags or DATAJOBS_* env."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    max_running: int = 10  # running jobs per kind
    max_running_per_namespace: int | None = None  # cap per kind and namespace; None: half of max_running
    worker_start_deadline_seconds: float = 300.0  # default for jobs without spec.startDeadlineSeconds
    active_deadline_seconds: float | None = None  # default spec.activeDeadlineSeconds (None: no deadline)
    ttl_seconds_after_finished: float | None = None  # default spec.ttlSecondsAfterFinished (None: kept)
    worker_image: str = "datajobs-operator:0.1.0"
    worker_service_account: str | None = None
    worker_resources: dict[str, dict[str, str]] | None = None  # None: DEFAULT_WORKER_RESOURCES
    worker_image_pull_policy: str = "IfNotPresent"
    worker_node_selector: tuple[tuple[str, str], ...] = ()
    worker_tolerations: tuple[tuple[str, str, str], ...] = ()
    state_namespace: str = "datajobs-system"  # where the executionId counter ConfigMap lives
    reconcile_workers: int = 8
    resync_seconds: float = 300.0
    metrics_port: int | None = 9090
    liveness_port: int | None = 8081
    bind_address: str = "0.0.0.0"
    leader_elect: bool = True  # one acting replica per state namespace (a Lease there)
    leader_identity: str = ""  # default: $POD_NAME, else the host name
    lease_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    kube_api_qps: float = 500.0  # client-side cap of the operator's API requests (a runaway guard)
    kube_api_burst: int = 1000
    extra: dict[str, str] = field(default_factory=dict)


def namespace_share(max_running: int, per_namespace: int | None) -> int:
    """Running jobs one namespace may hold per kind: the configured cap (0: no cap), by default half the
    slots (at least one), so one namespace's jobs can never take every slot from the others."""
    if per_namespace is None:
        return max(1, (max_running + 1) // 2)
    return per_namespace if per_namespace > 0 else max_running


def parse_resources(text: str) -> dict[str, dict[str, str]]:
    """`--worker-resources` JSON: {"requests": {...}, "limits": {...}} with quantity strings (or numbers)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--worker-resources is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise ValueError("--worker-resources must be an object with only `requests` and `limits`")
    result: dict[str, dict[str, str]] = {}
    for key, amounts in value.items():
        if not isinstance(amounts, dict) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in amounts.values()
        ):
            raise ValueError(f"--worker-resources {key} must map resource names to quantities")
        result[key] = {str(k): str(v) for k, v in amounts.items()}
    return result


def env_default(name: str, default: str | None) -> str | None:
    return os.environ.get(f"DATAJOBS_{name}", default)
