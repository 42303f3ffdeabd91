"""`python -m bench.run [--smoke|--full] [--n N ...]`: benchmark the operator and adapter against their peers.

Starts one dedicated local control plane, the operator and the adapter, runs every scenario (each next to
its peer, in the same run), prints a table and writes every figure to a JSON file under bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import environment, report
from bench.adapterload import AdapterLoad
from bench.cancel import cancel_ours, suspend_peer
from bench.dispatch import dispatch, names
from bench.gopprof import GoProfiler
from bench.kapi import Kapi
from bench.metrics import Scraper, delta, summarise_apiserver, summarise_operator
from bench.objects import batch_job, ij_collection, integrity_job, job_collection, pod_collection
from bench.procstats import PhaseCpu, quiesce
from bench.profile import Profiler
from bench.recorder import JobClock, PodClock
from bench.scale import scale
from bench.stack import ALL_NAMESPACES, NS_ADAPTER, NS_OPERATOR, NS_PEER, NS_SCALE, Stack

log = logging.getLogger("bench")
OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Settings:
    rounds: tuple[int, ...]  # N for dispatch and cancel
    cancel_sample: int  # per setting (immediate, graceful) and for the peer
    cancel_rate: float  # cancels per second (open loop)
    adapter_requests: int  # per client level, for each of adapter and raw
    clients: tuple[int, ...]
    scale_levels: tuple[int, ...]
    burst: int
    idle_window: float
    settle_s: float = 60.0  # at most this long waiting for the operator to go quiet between phases
    concurrency: int = 32  # concurrent creators


PRESETS = {
    "smoke": Settings((30,), 10, 20.0, 24, (1, 16, 64), (30, 60), 15, 2.0, settle_s=10.0),
    "medium": Settings((500,), 200, 10.0, 200, (1, 16, 64), (500, 1000), 200, 5.0),
    "full": Settings((1000, 5000), 200, 10.0, 300, (1, 16, 64), (1000, 5000, 10000), 500, 10.0),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="mode", help="tiny N (CI)")
    mode.add_argument("--full", action="store_const", const="full", dest="mode", help="N=1,000 and 5,000")
    p.set_defaults(mode="medium")
    p.add_argument("--n", type=int, action="append", help="N for dispatch and cancel (repeatable)")
    p.add_argument(
        "--scale-levels", type=lambda s: tuple(int(x) for x in s.split(",")), help="e.g. 1000,5000"
    )
    p.add_argument("--burst", type=int, help="jobs per scale burst")
    p.add_argument("--cancel-sample", type=int, help="cancels per setting")
    p.add_argument("--cancel-rate", type=float, help="cancels per second")
    p.add_argument("--adapter-requests", type=int, help="requests per client level")
    p.add_argument("--skip", action="append", default=[], choices=["dispatch", "adapter", "scale"])
    p.add_argument(
        "--json", type=Path, help="where to write the results (default bench/out/<mode>-<time>.json)"
    )
    p.add_argument("--workdir", type=Path, help="state directory (default: a new temp dir, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the state directory (logs) after the run")
    p.add_argument("--profile", action="store_true", help="py-spy the operator (and adapter) per phase")
    p.add_argument(
        "--apiserver-pprof", action="store_true", help="CPU-profile kube-apiserver per phase (go tool pprof)"
    )
    p.add_argument("--nodes", type=int, default=2, help="kwok fake nodes (11,000 pods each)")
    p.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        help="extra `datajobs run` flag, e.g. --operator-arg=--workers=64",
    )
    p.add_argument(
        "--operator-wrapper",
        type=Path,
        help="experiments: run this Python script (which patches something, then calls datajobs.cli.main) "
        "instead of `python -m datajobs.cli`",
    )
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    s = PRESETS[args.mode]
    overrides: dict[str, Any] = {
        "rounds": tuple(args.n) if args.n else None,
        "scale_levels": args.scale_levels,
        "burst": args.burst,
        "cancel_sample": args.cancel_sample,
        "cancel_rate": args.cancel_rate,
        "adapter_requests": args.adapter_requests,
    }
    s = replace(s, **{k: v for k, v in overrides.items() if v is not None})
    if args.scale_levels and not args.burst:
        s = replace(s, burst=max(1, min(500, s.scale_levels[0] // 2)))
    if s.burst >= s.scale_levels[0]:
        raise SystemExit("--burst must be smaller than the first scale level")
    return s


class Runner:
    """Runs the phases against one Stack, recording each phase's CPU by component (and profiles)."""

    def __init__(
        self, stack: Stack, api: Kapi, settings: Settings, out: Path, profile: bool, pprof: bool = False
    ) -> None:
        self.stack = stack
        self.pprof = pprof
        self.api = api
        self.s = settings
        self.out = out
        self.profile = profile
        self.results: dict[str, Any] = {"rounds": [], "phases": {}, "profiles": {}}
        self.pods = {ns: PodClock(api, ns) for ns in ALL_NAMESPACES}
        self.jobs = {ns: JobClock(api, ij_collection(ns)) for ns in (NS_OPERATOR, NS_ADAPTER)}
        self.jobs[NS_PEER] = JobClock(api, job_collection(NS_PEER))
        self.scraper = Scraper(api, stack.operator_metrics_url)

    @contextlib.asynccontextmanager
    async def phase(self, name: str, targets: Sequence[str] = ("operator",)) -> AsyncIterator[None]:
        self.stack.check_alive()
        await self.settle()
        pids = self.stack.pids()
        log.info("phase %s", name)
        profilers = (
            [(t, Profiler(pids[t], self.out / f"profile-{name}-{t}.txt").start()) for t in targets]
            if self.profile
            else []
        )
        pprof_path = self.out / f"pprof-{name}-kube-apiserver"
        apiserver = GoProfiler(self.api, pprof_path).start() if self.pprof else None
        api_before, op_before = await self.scraper.snapshot()
        cpu = PhaseCpu(pids).start()
        started = time.monotonic()
        try:
            yield
        finally:
            record: dict[str, Any] = {
                "wall_s": round(time.monotonic() - started, 2),
                "cpu_seconds": cpu.stop(),
            }
            self.results["phases"][name] = record
            for target, profiler in profilers:
                self.results["profiles"][f"{name}/{target}"] = profiler.stop()
        api_after, op_after = await self.scraper.snapshot()
        if apiserver is not None:
            self.results["profiles"][f"{name}/kube-apiserver"] = await apiserver.stop()
        record["api_requests"] = summarise_apiserver(delta(api_before, api_after))
        record["operator_metrics"] = summarise_operator(delta(op_before, op_after))
        self.stack.check_alive()

    async def settle(self) -> None:
        """Let the previous phase's aftermath die down (operator and API server nearly idle)."""
        pids = self.stack.pids()
        await quiesce(pids["operator"], below_percent=5, within=self.s.settle_s)
        # the adapter's watch cache also digests every deletion of the previous round
        if "adapter" in pids:
            await quiesce(pids["adapter"], below_percent=5, within=self.s.settle_s / 2)
        await quiesce(pids["kube-apiserver"], below_percent=30, within=self.s.settle_s / 2)

    async def cleanup(self, namespace: str, collection: str) -> None:
        await self.api.delete_collection(collection)
        await self.api.delete_collection(pod_collection(namespace), grace_seconds=0)
        deadline = time.monotonic() + 600
        while await self.api.count(collection) or await self.api.count(pod_collection(namespace)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace} still holds objects 600 s after deleting them")
            await asyncio.sleep(0.5)

    async def run(self, skip: Sequence[str]) -> dict[str, Any]:
        for clock in [*self.pods.values(), *self.jobs.values()]:
            await clock.start()
        try:
            if "dispatch" not in skip:
                for n in self.s.rounds:
                    self.results["rounds"].append(await self.round(n))
            if "adapter" not in skip:
                self.results["adapter"] = await self.adapter()
            if "scale" not in skip:
                # A fresh operator: Python seldom returns memory, so RSS would show the earlier phases' peak.
                self.stack.restart_operator()
                self.scraper.operator_url = self.stack.operator_metrics_url
                async with self.phase("scale"):
                    self.results["scale"] = await scale(
                        self.api, ij_collection(NS_SCALE), self.pods[NS_SCALE], self.stack.pids()["operator"],
                        list(self.s.scale_levels), self.s.burst, self.s.idle_window, self.s.concurrency,
                        timeout_per_job=0.5, settle=self.s.settle_s,
                    )  # fmt: skip
        finally:
            for clock in [*self.pods.values(), *self.jobs.values()]:
                await clock.stop()
        return self.results

    async def round(self, n: int) -> dict[str, Any]:
        timeout = 120 + n * 0.5
        sample = min(self.s.cancel_sample, n // 2)
        result: dict[str, Any] = {"n": n, "cancel_sample": sample}
        # The peer first, alone in the cluster with its N running jobs; then ours, alike.
        peer = names(f"p{n}", n)
        async with self.phase(f"dispatch-peer-{n}", ()):
            peer_dispatch = await dispatch(
                self.api, job_collection(NS_PEER), [batch_job(x) for x in peer], self.pods[NS_PEER],
                self.s.concurrency, timeout,
            )  # fmt: skip
        async with self.phase(f"cancel-peer-{n}", ()):
            peer_cancel = await suspend_peer(
                self.api, NS_PEER, peer[:sample], self.pods[NS_PEER], self.s.cancel_rate, timeout
            )
        await self.cleanup(NS_PEER, job_collection(NS_PEER))

        ours = names(f"o{n}", n)
        pods, jobs = self.pods[NS_OPERATOR], self.jobs[NS_OPERATOR]
        async with self.phase(f"dispatch-operator-{n}"):
            our_dispatch = await dispatch(
                self.api, ij_collection(NS_OPERATOR), [integrity_job(x) for x in ours], pods,
                self.s.concurrency, timeout,
            )  # fmt: skip
        async with self.phase(f"cancel-operator-{n}"):
            immediate = await cancel_ours(
                self.api, NS_OPERATOR, ours[:sample], False, pods, jobs, self.s.cancel_rate, timeout
            )
            graceful = await cancel_ours(
                self.api,
                NS_OPERATOR,
                ours[sample : 2 * sample],
                True,
                pods,
                jobs,
                self.s.cancel_rate,
                timeout,
            )
        await self.cleanup(NS_OPERATOR, ij_collection(NS_OPERATOR))

        phases = self.results["phases"]
        ours_cost = cost(phases[f"dispatch-operator-{n}"], n, "operator")
        peer_cost = cost(phases[f"dispatch-peer-{n}"], n, "kube-controller-manager")
        result["dispatch"] = {
            "operator": our_dispatch,
            "job_controller": peer_dispatch,
            "throughput_ratio": round(our_dispatch["jobs_per_s"] / peer_dispatch["jobs_per_s"], 3),
            # CPU and API calls per job hardly depend on how busy the machine is: the noise-proof comparison
            "cost_per_job": {"operator": ours_cost, "job_controller": peer_cost},
            "cpu_per_job_ratio": round(ours_cost["cpu_ms_total"] / peer_cost["cpu_ms_total"], 3),
        }
        result["cancel"] = {
            "operator_immediate": immediate,
            "operator_graceful": graceful,
            "job_controller_suspend": peer_cancel,
            "delete_requested_p50_ratio": round(
                immediate["delete_requested"]["p50_ms"] / peer_cancel["delete_requested"]["p50_ms"], 3
            ),
            "delete_requested_p99_ratio": round(
                immediate["delete_requested"]["p99_ms"] / peer_cancel["delete_requested"]["p99_ms"], 3
            ),
            "cost_per_cancel": {
                "operator": cost(phases[f"cancel-operator-{n}"], 2 * sample, "operator"),
                "job_controller": cost(phases[f"cancel-peer-{n}"], sample, "kube-controller-manager"),
            },
        }
        return result

    async def adapter(self) -> dict[str, Any]:
        k, levels = self.s.adapter_requests, self.s.clients
        pool = names("ad", 2 * k * len(levels))
        jobs = self.jobs[NS_ADAPTER]
        async with self.phase("adapter-pool", ()):
            await dispatch(
                self.api, ij_collection(NS_ADAPTER), [integrity_job(x) for x in pool], self.pods[NS_ADAPTER],
                self.s.concurrency, 120 + len(pool) * 0.5,
            )  # fmt: skip
        rows = []
        async with AdapterLoad(
            self.api, self.stack.adapter_url, self.stack.api_key, NS_ADAPTER, jobs
        ) as load:
            await load.wait_visible(pool, 120)
            for i, clients in enumerate(levels):
                chunk = pool[2 * k * i : 2 * k * (i + 1)]
                async with self.phase(f"adapter-{clients}", ("operator", "adapter")):
                    level = load.level(clients, chunk[:k], chunk[k:], settle=120 + k * 0.5, quiet=self.settle)
                    rows.append(await level)
        await self.cleanup(NS_ADAPTER, ij_collection(NS_ADAPTER))
        return {"levels": rows}


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def cost(phase: dict[str, Any], count: int, controller: str) -> dict[str, Any]:
    """CPU milliseconds and API requests per job in one phase (the load generator's own CPU left out)."""
    cpu = phase["cpu_seconds"]
    requests = phase.get("api_requests") or {}
    writes = {k: v["requests"] for k, v in requests.items() if k.split()[0] in WRITE_VERBS}
    return {
        "cpu_ms_total": round(1000 * sum(v for k, v in cpu.items() if k != "bench") / count, 2),
        "cpu_ms_controller": round(1000 * cpu.get(controller, 0.0) / count, 2),
        "cpu_ms_apiserver": round(1000 * cpu.get("kube-apiserver", 0.0) / count, 2),
        "cpu_ms_etcd": round(1000 * cpu.get("etcd", 0.0) / count, 2),
        "api_writes": round(sum(writes.values()) / count, 2),
        "api_writes_by_kind": {
            k: round(v / count, 2) for k, v in sorted(writes.items(), key=lambda kv: -kv[1])
        },
    }


async def _bench(
    stack: Stack, settings: Settings, out: Path, profile: bool, skip: Sequence[str], pprof: bool = False
) -> dict[str, Any]:
    assert stack.cluster is not None
    pki = stack.cluster.pki
    async with Kapi(stack.cluster.server, pki.ca_cert, pki.admin_cert, pki.admin_key) as api:
        kube = (await api.request("GET", "/version"))["gitVersion"]
        runner = Runner(stack, api, settings, out, profile, pprof)
        results = await runner.run(skip)
        results["versions"] = environment.versions(kube)
        return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    settings = settings_from(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path: Path = args.json or OUT / f"{args.mode}-{stamp}.json"
    out = json_path.parent
    out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="datajobs-bench-"))
    meta: dict[str, Any] = {
        "mode": args.mode,
        "started": environment.now(),
        "machine": environment.machine(),
        "loadavg_start": environment.loadavg(),
        "settings": asdict(settings),
        "operator_args": [f"--max-running={100_000}", *args.operator_arg],
        "operator_wrapper": str(args.operator_wrapper) if args.operator_wrapper else None,
        "workdir": str(workdir),
    }
    stack = Stack(
        workdir,
        nodes=args.nodes,
        operator_args=args.operator_arg,
        operator_wrapper=args.operator_wrapper,
        apiserver_profiling=args.apiserver_pprof,
    )
    started = time.monotonic()
    failed = True
    try:
        stack.start()
        meta["control_plane_startup_s"] = round(stack.cluster.startup_seconds, 1) if stack.cluster else None
        results = asyncio.run(_bench(stack, settings, out, args.profile, args.skip, args.apiserver_pprof))
        failed = False
    finally:
        stack.stop()
        if failed:
            log.error("benchmark failed; logs kept in %s", stack.logs)
        elif not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    meta |= {
        "finished": environment.now(),
        "loadavg_end": environment.loadavg(),
        "total_s": round(time.monotonic() - started, 1),
    }
    document = {"meta": meta, **results}
    document["targets"] = report.targets(document)
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    sys.stdout.write(report.render(document))
    sys.stdout.write(f"\nresults: {json_path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
