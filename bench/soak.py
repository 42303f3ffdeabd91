"""`python -m bench.soak`: jobs created, finished and cancelled without pause (kwok nodes); the operator's and
the adapter's RSS over time, and at the end: stuck jobs and leaked pods (both must be 0).

Each second `--rate` jobs (both kinds, alternating) are created; of the ones that run, half finish (their
pod is reported Succeeded, as a kubelet would), a quarter are cancelled through the adapter's vendor
endpoints and a quarter by a merge patch; finished jobs are deleted a few seconds later, so the live set
stays flat. RSS is compared between the first and the last window (default a third of the run each, at
most 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.objects import pod_template
from bench.procstats import rss_mb
from bench.stack import NS_ADAPTER, Stack
from datajobs.localcluster.rest import ApiError, Rest

log = logging.getLogger("bench.soak")
NS = NS_ADAPTER  # watched by both the operator and the adapter
GROUP_PATH = f"/apis/datajobs.io/v1alpha1/namespaces/{NS}"
PLURALS = {"IntegrityJob": "integrityjobs", "MaskingExecution": "maskingexecutions"}
TERMINAL = {"SUCCEEDED", "WARNING", "FAILED", "CANCELLED"}
WORKERS = "app.kubernetes.io/managed-by=datajobs-operator"
DELETE_AFTER_SECONDS = 3.0
SAMPLE_SECONDS = 10.0


def job(kind: str, name: str, n: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": pod_template()}
    if kind == "IntegrityJob":
        spec |= {"destinationId": "soak", "modelIds": ["orders"]}
    else:
        spec |= {"jobId": n, "connectorType": "DATABASE"}
    return {"apiVersion": "datajobs.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def finished_status(now: str) -> dict[str, Any]:
    terminated = {"exitCode": 0, "reason": "Completed", "message": "", "startedAt": now, "finishedAt": now}
    return {
        "status": {
            "phase": "Succeeded",
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


class Soak:
    def __init__(self, stack: Stack, rate: float) -> None:
        assert stack.cluster is not None
        self.stack = stack
        self.rest: Rest = stack.cluster.rest
        self.rate = rate
        self.created = 0
        self.kinds: dict[str, str] = {}  # name -> kind
        self.handled: set[str] = set()  # jobs finished or cancelled by us
        self.done_at: dict[str, float] = {}
        self.counts = {"finished": 0, "cancelled_http": 0, "cancelled_patch": 0, "deleted": 0, "errors": 0}
        self.samples: list[tuple[float, float, float]] = []  # (seconds, operator MB, adapter MB)

    def run(self, duration: float) -> None:
        started = time.monotonic()
        next_job = next_sample = started
        while (now := time.monotonic()) < started + duration:
            while next_job <= now:
                self._create()
                next_job += 1 / self.rate
            if now >= next_sample:
                self._sample(now - started)
                next_sample += SAMPLE_SECONDS
            self._tend(creating=True)
            time.sleep(0.2)
        self._sample(time.monotonic() - started)

    def drain(self, within: float) -> dict[str, int]:
        """Stop creating; let every job end and be deleted; count what is stuck and what is left behind."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self._tend(creating=False):
            time.sleep(0.5)
        jobs = self._jobs()
        stuck = [j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("status") not in TERMINAL]
        for j in jobs:
            self._delete(j)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self._pods():
            time.sleep(0.5)
        leaked = [p["metadata"]["name"] for p in self._pods()]
        if stuck or leaked:
            log.error("stuck jobs: %s; leaked pods: %s", stuck[:10], leaked[:10])
        return {"stuck_jobs": len(stuck), "leaked_pods": len(leaked), "jobs_left": len(self._jobs())}

    def _create(self) -> None:
        n = self.created
        kind = "IntegrityJob" if n % 2 == 0 else "MaskingExecution"
        name = f"soak-{n}"
        try:
            self.rest.create(f"{GROUP_PATH}/{PLURALS[kind]}", job(kind, name, n))
            self.kinds[name] = kind
            self.created += 1
        except (ApiError, OSError) as exc:
            self._error("create", exc)

    def _tend(self, creating: bool) -> bool:
        """One pass: finish or cancel running jobs, delete ended ones; True while any job is left."""
        jobs = self._jobs()
        running_pods = {
            p["metadata"]["labels"].get("datajobs.io/job")
            for p in self._pods()
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }
        now = time.monotonic()
        for j in jobs:
            name, status = j["metadata"]["name"], j.get("status") or {}
            if status.get("status") in TERMINAL:
                self.done_at.setdefault(name, now)
                if now - self.done_at[name] >= DELETE_AFTER_SECONDS or not creating:
                    self._delete(j)
            elif status.get("status") == "RUNNING" and name in running_pods and name not in self.handled:
                self._handle(j, int(name.rsplit("-", 1)[1]))
        return bool(jobs)

    def _handle(self, j: dict[str, Any], n: int) -> None:
        name, kind = j["metadata"]["name"], j["kind"]
        try:
            if n % 4 in (0, 3):
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self.rest.request(
                    "PATCH",
                    f"/api/v1/namespaces/{NS}/pods/{name}-worker/status",
                    finished_status(stamp),
                    content_type="application/merge-patch+json",
                )
                self.counts["finished"] += 1
            elif n % 4 == 1:
                self._adapter_cancel(kind, j["status"])
                self.counts["cancelled_http"] += 1
            else:
                patch = {"spec": {"cancelRequested": {"graceful": False}}}
                path = f"{GROUP_PATH}/{PLURALS[kind]}/{name}"
                self.rest.request("PATCH", path, patch, content_type="application/merge-patch+json")
                self.counts["cancelled_patch"] += 1
            self.handled.add(name)
        except (ApiError, OSError) as exc:
            self._error(f"handle {name}", exc)

    def _adapter_cancel(self, kind: str, status: dict[str, Any]) -> None:
        if kind == "IntegrityJob":
            path = f"/destinations/{status['destination_id']}/data-integrity/{status['id']}/cancel"
            headers = {"X-API-KEY": self.stack.api_key}
        else:
            path = f"/executions/{status['executionId']}/cancel"
            headers = {"Authorization": f"Bearer {self.stack.api_key}"}
        request = urllib.request.Request(self.stack.adapter_url + path, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()

    def _delete(self, j: dict[str, Any]) -> None:
        name = j["metadata"]["name"]
        try:
            self.rest.request("DELETE", f"{GROUP_PATH}/{PLURALS[j['kind']]}/{name}")
            self.counts["deleted"] += 1
        except ApiError as exc:
            if exc.status != 404:
                self._error(f"delete {name}", exc)
        self.done_at.pop(name, None)
        self.handled.discard(name)

    def _jobs(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for kind, plural in PLURALS.items():
            for item in self.rest.get(f"{GROUP_PATH}/{plural}").get("items", []):
                item.setdefault("kind", kind)
                items.append(item)
        return items

    def _pods(self) -> list[dict[str, Any]]:
        return list(
            self.rest.request("GET", f"/api/v1/namespaces/{NS}/pods", query={"labelSelector": WORKERS})[
                "items"
            ]
        )

    def _sample(self, at: float) -> None:
        assert self.stack.operator is not None and self.stack.adapter is not None
        self.stack.check_alive()
        self.samples.append((round(at, 1), rss_mb(self.stack.operator.pid), rss_mb(self.stack.adapter.pid)))

    def _error(self, what: str, exc: Exception) -> None:
        self.counts["errors"] += 1
        log.warning("%s: %s", what, exc)


def window_means(samples: list[tuple[float, float, float]], window: float) -> dict[str, Any]:
    end = samples[-1][0]
    first = [s for s in samples if s[0] <= window]
    last = [s for s in samples if s[0] >= end - window]
    result: dict[str, Any] = {"window_s": window}
    for i, who in ((1, "operator"), (2, "adapter")):
        a, b = statistics.mean(s[i] for s in first), statistics.mean(s[i] for s in last)
        result[who] = {
            "first_mb": round(a, 1),
            "last_mb": round(b, 1),
            "change_pct": round((b - a) / a * 100, 2),
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument(
        "--duration", type=float, default=1800.0, help="seconds of continuous load (default 30 min)"
    )
    p.add_argument("--rate", type=float, default=2.0, help="jobs created per second")
    p.add_argument("--window", type=float, help="seconds compared at each end (default: a third, max 600)")
    p.add_argument("--max-running", type=int, default=20, help="the operator's --max-running")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--workdir", type=Path, help="state directory (default: a temp dir, removed after)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    window = args.window or min(600.0, args.duration / 3)
    with tempfile.TemporaryDirectory(prefix="datajobs-soak-") as tmp:
        stack = Stack(args.workdir or Path(tmp), nodes=1, pods_per_node=5000, max_running=args.max_running)
        try:
            stack.start()
            soak = Soak(stack, args.rate)
            started = time.monotonic()
            soak.run(args.duration)
            end = soak.drain(within=120.0)
            results = {
                "duration_s": round(time.monotonic() - started, 1),
                "rate_per_s": args.rate,
                "jobs_created": soak.created,
                **soak.counts,
                **end,
                "rss": window_means(soak.samples, window),
                "samples": soak.samples,
            }
        finally:
            stack.stop()
    rss = results["rss"]
    op, ad = rss["operator"], rss["adapter"]
    sys.stdout.write(
        f"soak {results['duration_s']:.0f} s, {results['jobs_created']} jobs "
        f"({results['finished']} finished, {results['cancelled_http']} cancelled by HTTP, "
        f"{results['cancelled_patch']} by patch): stuck {results['stuck_jobs']}, leaked pods "
        f"{results['leaked_pods']}, errors {results['errors']}\n"
        f"RSS first/last {window:.0f} s: operator {op['first_mb']} -> {op['last_mb']} MB "
        f"({op['change_pct']:+.1f} %), adapter {ad['first_mb']} -> {ad['last_mb']} MB "
        f"({ad['change_pct']:+.1f} %)\n"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["stuck_jobs"] == 0 and results["leaked_pods"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
