"""`python -m bench.crd_cost`: what the API server spends on a job's creation and its status writes, for our
CRD and for variants of it (without the root rule freezing spec.template; without any root CEL rule;
without the PodTemplateSpec schema; without a schema), in one run.

Each variant is the IntegrityJob CRD under its own group; the objects are the dispatch benchmark's, the
status writes the operator's own (the dispatch write, then the write that records the observed pod).
The peer is a batch/v1 Job (the dispatch
benchmark's, handed to no controller by `spec.managedBy`) with two status merge patches like ours (startTime
and active; then ready). Rounds alternate the variants, so a drift of the machine touches each alike. Writes
go at a fixed concurrency; the figure is kube-apiserver + etcd CPU ms per request (psutil), with the median
of rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.kapi import ApiError, Kapi
from bench.load import run_concurrently
from bench.objects import batch_job, integrity_job
from bench.procstats import cpu_seconds, quiesce
from datajobs.core.lifecycle import JobFacts, PodFacts, decide
from datajobs.crdgen import render_crds
from datajobs.localcluster import LocalCluster
from datajobs.localcluster.crds import apply_crds
from datajobs.models.kinds import INTEGRITY_JOB

log = logging.getLogger("bench.crd_cost")
NAMESPACE = "crd-cost"
CRD_VARIANTS = ("ours", "no-template-rule", "no-root-rules", "no-template-schema", "no-schema")
BUILT_IN = "batch-job"  # the peer: a built-in resource (protobuf in etcd, Go validation)
VARIANTS = (*CRD_VARIANTS, BUILT_IN)
UNMANAGED = "bench.datajobs.io/no-controller"  # JobManagedBy: the Job controller leaves such Jobs alone
FREE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def variant_crd(name: str) -> dict[str, Any]:
    """The IntegrityJob CRD, renamed into group `<name>.bench.datajobs.io` and lightened as `name` says."""
    crd = copy.deepcopy(next(c for c in render_crds() if c["spec"]["names"]["kind"] == INTEGRITY_JOB.kind))
    group = f"{name}.bench.datajobs.io"
    crd["metadata"]["name"] = f"{INTEGRITY_JOB.plural}.{group}"
    crd["spec"]["group"] = group
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    if name in ("no-root-rules", "no-schema"):
        schema.pop("x-kubernetes-validations", None)
    if name == "no-template-rule":
        rules = schema["x-kubernetes-validations"]
        schema["x-kubernetes-validations"] = [r for r in rules if r["fieldPath"] != ".spec.template"]
    if name == "no-template-schema":
        schema["properties"]["spec"]["properties"]["template"] = dict(FREE)
    if name == "no-schema":
        schema["properties"]["spec"] = dict(FREE)
        schema["properties"]["status"] = dict(FREE)
    return crd


def statuses(meta: dict[str, Any], spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operator's two status writes of a dispatch: RUNNING (worker being created), then pod observed."""
    now = "2026-12-02T05:00:00.000001Z"
    first = decide(JobFacts(INTEGRITY_JOB.kind, meta, spec, None, None, True, now, submitted=now)).status
    pod = PodFacts(name=meta["name"] + "-worker", phase="Pending")
    second = decide(JobFacts(INTEGRITY_JOB.kind, meta, spec, first, pod, False, now)).status
    assert first is not None and second is not None
    return first, second


def collection(variant: str) -> str:
    if variant == BUILT_IN:
        return f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    return f"/apis/{variant}.bench.datajobs.io/v1alpha1/namespaces/{NAMESPACE}/{INTEGRITY_JOB.plural}"


async def wait_served(api: Kapi, path: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await api.count(path)
            return
        except ApiError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def cost(
    api_pids: Sequence[int], items: Sequence[Any], fn: Callable[[Any], Awaitable[None]], concurrency: int
) -> float:
    """CPU ms of kube-apiserver and etcd per item for `fn` over `items`."""
    for pid in api_pids:
        await quiesce(pid, below_percent=10, within=30)
    before = sum(cpu_seconds(p) for p in api_pids)
    await run_concurrently(items, fn, concurrency)
    return 1000 * (sum(cpu_seconds(p) for p in api_pids) - before) / len(items)


async def one_round(
    api: Kapi, pids: Sequence[int], variant: str, n: int, r: int, conc: int
) -> dict[str, float]:
    base = collection(variant)
    names = [f"r{r}-{i:05d}" for i in range(n)]
    created: dict[str, dict[str, Any]] = {}

    async def create(name: str) -> None:
        if variant == BUILT_IN:
            body = batch_job(name)
            body["spec"]["managedBy"] = UNMANAGED
        else:
            body = integrity_job(name)
            body["apiVersion"] = f"{variant}.bench.datajobs.io/v1alpha1"
        created[name] = await api.create(base, body)

    async def write(name: str, which: int) -> None:
        meta = created[name]["metadata"]
        if variant == BUILT_IN:
            status: dict[str, Any] = {"startTime": "2026-12-02T05:00:00Z", "active": 1}
            if which:
                status |= {"ready": 1}
        else:
            status = statuses(meta, created[name]["spec"])[which]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        created[name] = await api.merge_patch(f"{base}/{name}/status", patch)

    result = {
        "create": await cost(pids, names, create, conc),
        "status_dispatch": await cost(pids, names, lambda x: write(x, 0), conc),
        "status_observed": await cost(pids, names, lambda x: write(x, 1), conc),
    }
    await api.delete_collection(base)
    return result


async def measure(cluster: LocalCluster, n: int, rounds: int, conc: int) -> dict[str, Any]:
    pki = cluster.pki
    pids = [c.pid for c in cluster.children if c.name in ("kube-apiserver", "etcd")]
    per: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    async with Kapi(cluster.server, pki.ca_cert, pki.admin_cert, pki.admin_key) as api:
        for variant in VARIANTS:  # a CRD's resource is served a moment after it is Established
            await wait_served(api, collection(variant))
        for r in range(rounds):
            for variant in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
                per[variant].append(await one_round(api, pids, variant, n, r, conc))
                log.info("round %d %s: %s", r, variant, per[variant][-1])
    return {
        v: {k: round(statistics.median(x[k] for x in rows), 2) for k in rows[0]} for v, rows in per.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.crd_cost", description=__doc__)
    p.add_argument("--n", type=int, default=300, help="objects per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="datajobs-crd-cost-"))
    cluster = LocalCluster(workdir / "cluster", nodes=1)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        cluster.start()
        apply_crds(cluster.rest, [variant_crd(v) for v in CRD_VARIANTS], field_manager="datajobs-bench")
        cluster.rest.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        table = asyncio.run(measure(cluster, args.n, args.rounds, args.concurrency))
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    document = {"started": started, "n": args.n, "rounds": args.rounds, "cpu_ms_per_request": table}
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    out = [
        "| resource | create | status write (dispatch) | status write (pod observed) |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {v} | {t['create']} | {t['status_dispatch']} | {t['status_observed']} |" for v, t in table.items()
    ]
    sys.stdout.write("kube-apiserver + etcd CPU ms per request (median of rounds)\n" + "\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
