"""The operator's settings: one documented dataclass, filled from `datajobs run` flags or DATAJOBS_* env."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    max_running: int = 10  # running jobs per kind
    max_running_per_namespace: int | None = None  # optional cap per kind and namespace
    worker_image: str = "datajobs-operator:0.1.0"
    worker_service_account: str | None = None
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
    kube_api_qps: float = 50.0  # client-side rate limit of the operator's API requests
    kube_api_burst: int = 100
    extra: dict[str, str] = field(default_factory=dict)


def env_default(name: str, default: str | None) -> str | None:
    return os.environ.get(f"DATAJOBS_{name}", default)
