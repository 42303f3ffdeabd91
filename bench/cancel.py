"""Cancel latency: paced cancel patches → pod deletion requested (and, for ours, status CANCELLED)."""

from __future__ import annotations

import time
from typing import Any

from bench.kapi import Kapi
from bench.load import paced
from bench.objects import ij_collection, job_collection
from bench.recorder import JobClock, PodClock, wait_all
from bench.stats import summary_ms


async def cancel_ours(
    api: Kapi,
    namespace: str,
    sample: list[str],
    graceful: bool,
    pods: PodClock,
    jobs: JobClock,
    rate: float,
    within: float,
) -> dict[str, Any]:
    """`kubectl patch --type merge -p '{"spec":{"cancelRequested":{"graceful":…}}}'`, one per job, paced."""
    sent, acked = await _send(
        api, ij_collection(namespace), sample, {"cancelRequested": {"graceful": graceful}}, rate
    )
    await wait_all(sample, pods.deleting.__contains__, "saw their pod's deletion requested", within)
    await wait_all(sample, lambda n: jobs.reached(n, "CANCELLED") is not None, "reached CANCELLED", within)
    cancelled = {n: jobs.reached(n, "CANCELLED") or 0.0 for n in sample}
    return {
        "graceful": graceful,
        "sample": len(sample),
        "rate_per_s": rate,
        "patch_ack": summary_ms([acked[n] - sent[n] for n in sample]),
        "delete_requested": summary_ms([pods.deleting[n] - sent[n] for n in sample]),
        "cancelled": summary_ms([cancelled[n] - sent[n] for n in sample]),
        # the operator's own reaction, without the grace period kwok waits out before deleting the pod
        "pod_gone_to_cancelled": summary_ms(
            [cancelled[n] - pods.deleted[n] for n in sample if n in pods.deleted]
        ),
    }


async def suspend_peer(
    api: Kapi, namespace: str, sample: list[str], pods: PodClock, rate: float, within: float
) -> dict[str, Any]:
    """The Job controller's cancel: `spec.suspend: true` → it deletes the Job's active pod."""
    sent, acked = await _send(api, job_collection(namespace), sample, {"suspend": True}, rate)
    await wait_all(sample, pods.deleting.__contains__, "saw their pod's deletion requested", within)
    return {
        "sample": len(sample),
        "rate_per_s": rate,
        "patch_ack": summary_ms([acked[n] - sent[n] for n in sample]),
        "delete_requested": summary_ms([pods.deleting[n] - sent[n] for n in sample]),
    }


async def _send(
    api: Kapi, collection: str, sample: list[str], spec_patch: dict[str, Any], rate: float
) -> tuple[dict[str, float], dict[str, float]]:
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}

    async def one(name: str) -> None:
        sent[name] = time.monotonic()
        await api.merge_patch(f"{collection}/{name}", {"spec": spec_patch})
        acked[name] = time.monotonic()

    await paced(sample, one, rate)
    return sent, acked
