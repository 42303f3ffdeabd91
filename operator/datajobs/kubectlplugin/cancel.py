"""`kubectl datajobs cancel`: the merge patch the README shows, and the operator's verdict read back from the
job's conditions (CancelRequest for the patched generation, then CANCELLED once the worker pod is gone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from datajobs.core.conditions import CANCEL_REQUEST, get_condition
from datajobs.kubectlplugin.api import Api
from datajobs.kubectlplugin.refs import Ref
from datajobs.kubectlplugin.waiting import TERMINAL, Never, WaitTimeout, wait_until

REJECTED_PREFIX = "cancel rejected: "


@dataclass(frozen=True)
class Outcome:
    """How one job's cancel ended: `ok` (cancelled, or requested when not waiting) or rejected."""

    ref: Ref
    ok: bool
    text: str
    job: dict[str, Any]

    @property
    def line(self) -> str:
        return f"{self.ref.qualified} {self.text}"


def request_body(expected_status: str | None, graceful: bool, now: datetime | None = None) -> dict[str, Any]:
    """Every field set (a merge patch keeps fields it does not name): the guard, the mode, and requestedAt,
    which makes a repeated request a new generation the operator evaluates afresh."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "spec": {
            "cancelRequested": {"expectedStatus": expected_status, "graceful": graceful, "requestedAt": stamp}
        }
    }


def preflight(ref: Ref, job: dict[str, Any]) -> Outcome | None:
    """A finished job is not patched (once CANCELLED its request is frozen): report it instead."""
    status = job.get("status") or {}
    current = status.get("status")
    if current not in TERMINAL:
        return None
    accepted = get_condition(status, CANCEL_REQUEST)
    if current == "CANCELLED" and accepted is not None and accepted.get("status") == "True":
        return Outcome(ref, True, "already cancelled", job)
    return Outcome(
        ref, False, f"cancel rejected (AlreadyFinished): the job already finished with status {current}", job
    )


def verdict(ref: Ref, job: dict[str, Any], generation: int) -> Outcome | None:
    """The operator's answer to the request of `generation`; None while it is still to come."""
    status = job.get("status") or {}
    current = status.get("status")
    cond = get_condition(status, CANCEL_REQUEST)
    if cond is None:
        return None
    accepted = cond.get("status") == "True"
    if accepted and current == "CANCELLED":  # an accepted cancel of a finished job keeps its generation
        return Outcome(ref, True, "cancelled", job)
    if int(cond.get("observedGeneration") or 0) < generation:
        return None
    if not accepted:
        message = str(cond.get("message") or "").removeprefix(REJECTED_PREFIX)
        return Outcome(ref, False, f"cancel rejected ({cond.get('reason')}): {message}", job)
    if current in TERMINAL:  # accepted, then the job ended some other way (not expected by the lifecycle)
        return Outcome(ref, False, f"cancel accepted but the job finished {current}", job)
    return None  # accepted: the worker pod is being stopped


def cancel(
    api: Api,
    refs: list[Ref],
    expected_status: str | None,
    graceful: bool,
    dry_run: str,
    wait: bool,
    timeout: float,
    report: Callable[[Outcome], None],
) -> list[Outcome]:
    """Patch every job, then (with `wait`) read each verdict; `report` is called as each outcome is known."""
    body = request_body(expected_status, graceful)
    pending: list[tuple[Ref, int]] = []
    outcomes: list[Outcome] = []

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        report(outcome)

    for ref in refs:
        job = api.get_job(ref)
        early = preflight(ref, job)
        if early is not None:
            done(early)
            continue
        if dry_run == "client":
            done(Outcome(ref, True, "cancel requested (dry run)", job))
            continue
        patched = api.patch_job(ref, body, dry_run=dry_run == "server")
        if dry_run == "server":
            done(Outcome(ref, True, "cancel requested (server dry run)", patched))
        elif not wait:
            done(Outcome(ref, True, "cancel requested", patched))
        else:
            pending.append((ref, int(patched["metadata"].get("generation") or 1)))
    deadline = time.monotonic() + timeout
    for ref, generation in pending:
        try:
            done(wait_until(api, ref, _verdict_of(ref, generation), deadline))
        except WaitTimeout:
            done(Outcome(ref, False, "timed out waiting for the operator's verdict (is it running?)", {}))
        except Never as exc:
            done(Outcome(ref, False, str(exc), {}))
    return outcomes


def _verdict_of(ref: Ref, generation: int) -> Callable[[dict[str, Any]], Outcome | None]:
    return lambda job: verdict(ref, job, generation)
