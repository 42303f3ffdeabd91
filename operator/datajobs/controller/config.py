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
    worker_image_pull_policy: str = "IfNotPresent"
    worker_node_selector: tuple[tuple[str, str], ...] = ()
    worker_tolerations: tuple[tuple[str, str, str], ...] = ()
    state_namespace: str = "datajobs-system"  # where the executionId counter ConfigMap lives
    reconcile_workers: int = 8
    resync_seconds: float = 300.0
    metrics_port: int | None = 9090
    liveness_port: int | None = 8081
    bind_address: str = "0.0.0.0"
    extra: dict[str, str] = field(default_factory=dict)


def env_default(name: str, default: str | None) -> str | None:
    return os.environ.get(f"DATAJOBS_{name}", default)
