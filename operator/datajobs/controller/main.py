"""`datajobs run`: parse the operator's flags and run kopf with our handlers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import TypeVar

import kopf
from kopf._core.engines.peering import Identity
from prometheus_client import start_http_server

from datajobs.controller.config import OperatorConfig, parse_resources
from datajobs.core.workerpod import parse_node_selector, parse_toleration

T = TypeVar("T")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DATAJOBS_{name}", default)


def _flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError: the message becomes the usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", default=_env("KUBECONFIG"), help="kubeconfig file (default: in-cluster)"
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--max-running",
        type=int,
        default=int(_env("MAX_RUNNING", "10") or 10),
        help="running jobs allowed per kind (DATAJOBS_MAX_RUNNING)",
    )
    parser.add_argument(
        "--max-running-per-namespace",
        type=int,
        default=int(v) if (v := _env("MAX_RUNNING_PER_NAMESPACE")) else None,
        help="running jobs per kind one namespace may hold (default: half of --max-running; 0: no cap)",
    )
    parser.add_argument(
        "--worker-start-deadline",
        type=float,
        default=float(_env("WORKER_START_DEADLINE", "300") or 300),
        help="seconds a worker may take to start before its job FAILS (spec.startDeadlineSeconds wins)",
    )
    parser.add_argument(
        "--active-deadline",
        type=float,
        default=float(v) if (v := _env("ACTIVE_DEADLINE")) else None,
        metavar="SECONDS",
        help="seconds a job may run before it is stopped and FAILED/DeadlineExceeded, for jobs without "
        "spec.activeDeadlineSeconds (default: no deadline)",
    )
    parser.add_argument(
        "--ttl-after-finished",
        type=float,
        default=float(v) if (v := _env("TTL_AFTER_FINISHED")) else None,
        metavar="SECONDS",
        help="delete finished jobs this long after they ended, for jobs without "
        "spec.ttlSecondsAfterFinished (default: finished jobs stay)",
    )
    parser.add_argument(
        "--worker-image",
        default=_env("WORKER_IMAGE", "datajobs-operator:0.1.0"),
        help="image of the default (reference) worker",
    )
    parser.add_argument(
        "--worker-service-account",
        default=_env("WORKER_SERVICE_ACCOUNT"),
        help="ServiceAccount of default worker pods",
    )
    parser.add_argument(
        "--worker-resources",
        default=_env("WORKER_RESOURCES"),
        help='requests/limits of default worker containers as JSON, e.g. \'{"requests": {"cpu": "100m"}}\' '
        "(default: requests cpu 100m, memory 128Mi; limits memory 512Mi)",
    )
    parser.add_argument(
        "--worker-image-pull-policy",
        default=_env("WORKER_IMAGE_PULL_POLICY", "IfNotPresent"),
        choices=("Always", "IfNotPresent", "Never"),
        help="imagePullPolicy of default worker pods",
    )
    parser.add_argument(
        "--worker-node-selector",
        action="append",
        type=_flag(parse_node_selector),
        default=[],
        metavar="KEY=VALUE",
        help="nodeSelector entry of default worker pods (repeatable)",
    )
    parser.add_argument(
        "--worker-toleration",
        action="append",
        type=_flag(parse_toleration),
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="toleration of default worker pods (repeatable)",
    )
    parser.add_argument(
        "--state-namespace",
        default=_env("STATE_NAMESPACE", "datajobs-system"),
        help="namespace of the executionId counter ConfigMap (created if missing: no)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(_env("RECONCILE_WORKERS", "8") or 8),
        help="concurrent reconciles",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("METRICS_PORT", "9090") or 9090),
        help="Prometheus /metrics port (0 disables)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=int(_env("LIVENESS_PORT", "8081") or 8081),
        help="kopf liveness /healthz port (0 disables)",
    )
    parser.add_argument(
        "--bind-address",
        default=_env("BIND_ADDRESS", "0.0.0.0"),
        help="address for the metrics and liveness servers",
    )

    parser.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=(_env("LEADER_ELECT", "true") or "true").lower() not in ("0", "false", "no"),
        help="hold a Lease in the state namespace; only its holder acts, other replicas stand by",
    )
    parser.add_argument(
        "--leader-identity",
        default=_env("LEADER_IDENTITY") or os.environ.get("POD_NAME") or socket.gethostname(),
        help="this replica's name in the Lease (default: $POD_NAME, else the host name)",
    )
    parser.add_argument("--lease-duration", type=int, default=15, help="seconds a Lease is valid unrenewed")
    parser.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds the leader may fail to renew"
    )
    parser.add_argument("--retry-period", type=float, default=2.0, help="seconds between Lease attempts")
    parser.add_argument(
        "--kube-api-qps", type=float, default=500.0, help="client-side API request rate limit"
    )
    parser.add_argument(
        "--kube-api-burst", type=int, default=1000, help="requests allowed above the rate in a burst"
    )


def main(args: argparse.Namespace) -> int:
    try:
        resources = parse_resources(args.worker_resources) if args.worker_resources else None
    except ValueError as exc:
        logging.getLogger("datajobs").error("datajobs run: %s", exc)
        return 2
    config = OperatorConfig(
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace),
        max_running=args.max_running,
        max_running_per_namespace=args.max_running_per_namespace,
        worker_start_deadline_seconds=args.worker_start_deadline,
        active_deadline_seconds=args.active_deadline,
        ttl_seconds_after_finished=args.ttl_after_finished,
        worker_image=args.worker_image,
        worker_service_account=args.worker_service_account,
        worker_resources=resources,
        worker_image_pull_policy=args.worker_image_pull_policy,
        worker_node_selector=tuple(args.worker_node_selector),
        worker_tolerations=tuple(args.worker_toleration),
        state_namespace=args.state_namespace,
        reconcile_workers=args.workers,
        metrics_port=args.metrics_port or None,
        liveness_port=args.liveness_port or None,
        bind_address=args.bind_address,
        leader_elect=args.leader_elect,
        leader_identity=args.leader_identity,
        lease_seconds=args.lease_duration,
        renew_deadline_seconds=args.renew_deadline,
        retry_period_seconds=args.retry_period,
        kube_api_qps=args.kube_api_qps,
        kube_api_burst=args.kube_api_burst,
    )
    if config.leader_elect and not (
        0 < config.retry_period_seconds < config.renew_deadline_seconds < config.lease_seconds
    ):
        raise SystemExit("datajobs run: need 0 < --retry-period < --renew-deadline < --lease-duration")
    if config.kubeconfig:
        os.environ["KUBECONFIG"] = config.kubeconfig  # kopf's own login reads it
    import datajobs.controller.handlers  # noqa: F401  (registers the handlers)

    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.bind_address)
    liveness = (
        f"http://{config.bind_address}:{config.liveness_port}/healthz" if config.liveness_port else None
    )
    settings = kopf.OperatorSettings()
    # The operator serves exactly its two kinds: no scan of the cluster's CRDs and namespaces, so its RBAC
    # needs no access to them (with the scan on and no such access, kopf retries the forbidden calls for
    # about a minute before it starts watching anything).
    settings.scanning.disabled = True
    asyncio.run(
        kopf.operator(
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            # kopf's own peering stays off: our Lease decides who acts (kopf's peering would pause the
            # watches of a standby, leaving it nothing to take over with)
            standalone=True,
            # kopf would name us after getpass.getuser(), which fails for a uid with no passwd entry (the
            # image's 65532, any runAsUser): the host name (the pod's name in a pod) and pid instead.
            identity=Identity(f"{socket.gethostname()}-{os.getpid()}"),
            liveness_endpoint=liveness,
            memo=kopf.Memo(config=config),
            settings=settings,
        )
    )
    return 0
