"""Leader election on a coordination.k8s.io Lease, as client-go does it: who may write the next record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease's spec that leader election reads and writes."""

    holder: str = ""  # empty once released
    duration_seconds: int = 15
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @staticmethod
    def of(lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return LeaseRecord(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder or None,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


def next_record(
    me: str,
    observed: LeaseRecord | None,
    observed_at: float,
    now: float,
    stamp: str,
    duration_seconds: int,
) -> LeaseRecord | None:
    """The record to write to take or keep the lease, or None while another holder's lease is valid.

    `observed_at` is when (on our monotonic clock) we first saw `observed` as it is: like client-go, a
    lease expires `duration` after we last saw it change, so no clock is compared across machines.
    """
    if observed is None:
        return LeaseRecord(me, duration_seconds, stamp, stamp, 0)
    if observed.holder == me:
        return replace(observed, duration_seconds=duration_seconds, renew_time=stamp)
    if observed.holder and now < observed_at + observed.duration_seconds:
        return None
    return LeaseRecord(me, duration_seconds, stamp, stamp, observed.transitions + 1)


def released(record: LeaseRecord, stamp: str) -> LeaseRecord:
    """What a leader writes on a clean shutdown: no holder, so a standby takes over at once."""
    return replace(record, holder="", duration_seconds=1, renew_time=stamp)
