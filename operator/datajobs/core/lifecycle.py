"""The job lifecycle as one pure function: (spec, status, observed pod, queue facts) -> new status + actions.

Every state change the operator makes is decided here; handlers only gather the facts and apply the
result. A decision depends only on its inputs, so re-running it after a crash or a conflict is safe.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from datajobs.core.conditions import (
    CANCEL_REQUEST,
    CANCELLING,
    FINISHED,
    WORKER_POD,
    get_condition,
    set_condition,
)
from datajobs.core.shapes import SHAPES, MalformedReport, StatusShape, report_summary
from datajobs.models import TERMINAL_STATUSES, JobStatus

IMMEDIATE_GRACE_SECONDS = 5
"""Grace of an immediate stop. Not 0 (a force delete: the pod would vanish while it runs) and not 1: the
worker needs up to 1.5 s after SIGTERM (read its pod, cancel the statement, write the report naming what
it left disabled), and the kubelet kills it at the grace. A prompt worker is gone long before this ends."""
DEFAULT_GRACE_SECONDS = 30
LAST_OUTPUT_CHARS = 1000
TERMINATION_REASONS = {"OOMKilled": "OOMKilled: the container exceeded its memory limit"}
"""How the kubelet's reason for a terminated container is told in a FAILED job's message."""


@dataclass(frozen=True)
class PodFacts:
    """What the operator observed of a job's worker pod."""

    name: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    deleting: bool = False
    exit_code: int | None = None
    termination_message: str = ""
    termination_reason: str = ""
    progress: str = ""  # the raw datajobs.io/progress annotation
    grace_seconds: int = DEFAULT_GRACE_SECONDS  # the pod's terminationGracePeriodSeconds


@dataclass(frozen=True)
class JobFacts:
    """Everything a decision may depend on."""

    kind: str
    meta: dict[str, Any]  # name, namespace, uid, generation
    spec: dict[str, Any]
    status: dict[str, Any] | None
    pod: PodFacts | None
    may_dispatch: bool  # the queue granted this job a slot
    now: str
    execution_id: int | None = None  # allocated by the caller for a new MaskingExecution
    submitted: str | None = None  # when the operator first saw a new job: its place in the FIFO queue
    gone_pod: PodFacts | None = None  # the worker pod's last state, once it is gone (its final report)


@dataclass(frozen=True)
class CreatePod:
    """Create the worker pod (idempotent: the name is deterministic)."""


@dataclass(frozen=True)
class DeletePod:
    """Stop the worker: annotate the cancel mode, then delete with this grace period."""

    name: str
    graceful: bool
    grace_seconds: int


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the job."""

    reason: str
    message: str
    warning: bool = False


Action = CreatePod | DeletePod | Emit


@dataclass
class Decision:
    status: dict[str, Any] | None  # the new status, or None when nothing changes
    actions: list[Action] = field(default_factory=list)


def decide(facts: JobFacts) -> Decision:
    shape = SHAPES[facts.kind]
    generation = int(facts.meta.get("generation") or 1)
    old = facts.status or {}
    status: dict[str, Any] = copy.deepcopy(old)
    actions: list[Action] = []
    now = facts.now

    if not old.get("status"):
        status = shape.initial(facts.meta, facts.spec, facts.submitted or now, facts.execution_id)
        actions.append(Emit("Queued", "job submitted and waiting for a worker slot"))

    status[shape.observed_generation] = generation
    current = JobStatus(status["status"])
    cancel = facts.spec.get("cancelRequested")
    evaluated = get_condition(status, CANCEL_REQUEST)
    unevaluated = cancel is not None and (
        evaluated is None
        or (
            evaluated.get("observedGeneration") != generation
            and not _accepted_and_finished(evaluated, current)
        )
    )

    if unevaluated and cancel is not None:  # (unevaluated implies it; this tells the type checker)
        expected = cancel.get("expectedStatus")
        if current in TERMINAL_STATUSES:
            msg = f"cancel rejected: the job already finished with status {current.value}"
            set_condition(status, CANCEL_REQUEST, False, "AlreadyFinished", msg, generation, now)
            actions.append(Emit("CancelRejected", msg, warning=True))
        elif expected is not None and expected != current.value:
            msg = f"cancel rejected: expectedStatus is {expected} but the job is {current.value}"
            set_condition(status, CANCEL_REQUEST, False, "ExpectedStatusMismatch", msg, generation, now)
            actions.append(Emit("CancelRejected", msg, warning=True))
        else:
            mode = "graceful" if cancel.get("graceful") else "immediate"
            msg = f"cancel accepted ({mode}) while the job was {current.value}"
            set_condition(status, CANCEL_REQUEST, True, "Accepted", msg, generation, now)
            actions.append(Emit("CancelAccepted", msg))
            if current is JobStatus.QUEUED:
                _finish(
                    shape,
                    status,
                    JobStatus.CANCELLED,
                    "cancelled while queued; no worker was started",
                    generation,
                    now,
                    actions,
                )
            else:
                set_condition(
                    status,
                    CANCELLING,
                    True,
                    "WaitingForWorker",
                    f"stopping the worker pod ({mode})",
                    generation,
                    now,
                )
                if facts.pod is not None:
                    actions.append(_delete(facts.pod, bool(cancel.get("graceful"))))

    current = JobStatus(status["status"])
    cancelling = get_condition(status, CANCELLING)
    in_cancel = current is JobStatus.RUNNING and cancelling is not None and cancelling["status"] == "True"

    if in_cancel:
        _remember_pod_report(shape, status, facts.pod)
        if facts.pod is None:
            _remember_pod_report(shape, status, facts.gone_pod)
            set_condition(status, CANCELLING, False, "WorkerGone", "the worker pod is gone", generation, now)
            _worker_gone(status, generation, now)
            said = report_summary(facts.gone_pod.termination_message) if facts.gone_pod else ""
            _finish(
                shape,
                status,
                JobStatus.CANCELLED,
                "cancelled; the worker pod is gone" + (f"; the worker reported: {said}" if said else ""),
                generation,
                now,
                actions,
            )
        elif not facts.pod.deleting and not any(isinstance(a, DeletePod) for a in actions):
            graceful = bool((cancel or {}).get("graceful"))
            actions.append(_delete(facts.pod, graceful))
    elif current is JobStatus.RUNNING:
        _running(shape, facts, status, generation, actions)
    elif current is JobStatus.QUEUED and facts.may_dispatch:  # any cancel left here was rejected
        _dispatch(shape, status, generation, now, actions)

    if not old.get("status") and any(isinstance(a, CreatePod) for a in actions):
        actions = [a for a in actions if not (isinstance(a, Emit) and a.reason == "Queued")]  # never waited
    return Decision(status=None if status == old else status, actions=actions)


def _accepted_and_finished(evaluated: dict[str, Any], current: JobStatus) -> bool:
    """An accepted cancel of a finished job stays accepted, whatever else changes in the spec later."""
    return evaluated.get("status") == "True" and current in TERMINAL_STATUSES


def _dispatch(
    shape: StatusShape, status: dict[str, Any], generation: int, now: str, actions: list[Action]
) -> None:
    status["status"] = JobStatus.RUNNING.value
    status[shape.started] = now
    set_condition(status, WORKER_POD, False, "Creating", "creating the worker pod", generation, now)
    actions.append(CreatePod())
    actions.append(Emit("Dispatched", "worker pod created"))


def _running(
    shape: StatusShape, facts: JobFacts, status: dict[str, Any], generation: int, actions: list[Action]
) -> None:
    pod, now = facts.pod, facts.now
    worker = get_condition(status, WORKER_POD)
    if pod is None:
        if worker is not None and worker["status"] == "True":
            _worker_gone(status, generation, now)
            _finish(
                shape,
                status,
                JobStatus.FAILED,
                "the worker pod disappeared before it finished",
                generation,
                now,
                actions,
            )
        else:  # dispatched, but the pod was never seen: the create did not happen (crash) — do it now
            actions.append(CreatePod())
        return
    if worker is None or worker["status"] != "True":
        set_condition(status, WORKER_POD, True, "Observed", f"worker pod {pod.name} exists", generation, now)
    if pod.progress:
        try:
            shape.apply_progress(status, _json_object(pod.progress))
        except MalformedReport:
            pass  # progress is best effort; the final report decides
    if pod.phase not in ("Succeeded", "Failed"):
        return
    try:
        claimed = shape.apply_result(status, pod.termination_message)
    except MalformedReport as exc:
        if pod.phase == "Failed":  # killed or crashed before any report: the message is its last log lines
            last = pod.termination_message.strip()[-LAST_OUTPUT_CHARS:]
            message = f"{_outcome_message(status, shape, JobStatus.FAILED, pod)}; its last output: {last}"
        else:
            message = f"malformed termination message: {exc}"
        _finish(shape, status, JobStatus.FAILED, message, generation, now, actions)
        return
    if pod.phase == "Succeeded":
        outcome = JobStatus(claimed) if claimed in ("SUCCEEDED", "WARNING") else JobStatus.SUCCEEDED
        if claimed == "FAILED":
            outcome = JobStatus.FAILED
        _finish(
            shape, status, outcome, _outcome_message(status, shape, outcome, pod), generation, now, actions
        )
    else:
        _finish(
            shape,
            status,
            JobStatus.FAILED,
            _outcome_message(status, shape, JobStatus.FAILED, pod),
            generation,
            now,
            actions,
        )


def _outcome_message(status: dict[str, Any], shape: StatusShape, outcome: JobStatus, pod: PodFacts) -> str:
    field_name = shape.message_field()
    reported = status.get(field_name, "") if field_name else report_summary(pod.termination_message)
    if outcome is JobStatus.FAILED:
        why = TERMINATION_REASONS.get(pod.termination_reason, pod.termination_reason or "Error")
        base = f"worker failed (exit code {pod.exit_code}, {why})"
        return f"{base}: {reported}" if reported else base
    return reported or f"worker finished: {outcome.value}"


def _remember_pod_report(shape: StatusShape, status: dict[str, Any], pod: PodFacts | None) -> None:
    """Keep what a cancelled worker reported (counts so far) — but its claimed status never wins."""
    if pod is None:
        return
    if pod.progress:
        try:
            shape.apply_progress(status, _json_object(pod.progress))
        except MalformedReport:
            pass
    if pod.phase in ("Succeeded", "Failed") and pod.termination_message:
        try:
            shape.apply_result(status, pod.termination_message)
        except MalformedReport:
            pass


def _finish(
    shape: StatusShape,
    status: dict[str, Any],
    outcome: JobStatus,
    message: str,
    generation: int,
    now: str,
    actions: list[Action],
) -> None:
    status["status"] = outcome.value
    status[shape.ended] = now
    field_name = shape.message_field()
    if field_name and (outcome in (JobStatus.FAILED, JobStatus.CANCELLED) or not status.get(field_name)):
        status[field_name] = message
    set_condition(status, FINISHED, True, outcome.value.capitalize(), message, generation, now)
    actions.append(Emit(outcome.value.capitalize(), message, warning=outcome is JobStatus.FAILED))


def _delete(pod: PodFacts, graceful: bool) -> DeletePod:
    grace = max(pod.grace_seconds, IMMEDIATE_GRACE_SECONDS) if graceful else IMMEDIATE_GRACE_SECONDS
    return DeletePod(name=pod.name, graceful=graceful, grace_seconds=grace)


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedReport(exc.msg) from exc
    if not isinstance(value, dict):
        raise MalformedReport("not a JSON object")
    return value


def worker_rejected(facts: JobFacts, reason: str) -> Decision:
    """The API server refused the worker pod (e.g. an invalid template): the job FAILED, visibly, once."""
    shape = SHAPES[facts.kind]
    status = copy.deepcopy(facts.status or {})
    actions: list[Action] = []
    generation = int(facts.meta.get("generation") or 1)
    _finish(
        shape,
        status,
        JobStatus.FAILED,
        f"worker pod rejected by the API server: {reason}",
        generation,
        facts.now,
        actions,
    )
    return Decision(status=status, actions=actions)


def _worker_gone(status: dict[str, Any], generation: int, now: str) -> None:
    if get_condition(status, WORKER_POD) is not None:
        set_condition(
            status, WORKER_POD, False, "Deleted", "the worker pod no longer exists", generation, now
        )


def worker_refused(facts: JobFacts, reason: str) -> Decision:
    """The API server refused the worker pod for now (403: a quota, an admission policy): say so on the job
    and keep retrying; written once per distinct reason."""
    status = copy.deepcopy(facts.status or {})
    generation = int(facts.meta.get("generation") or 1)
    message = f"the API server refused the worker pod (will retry): {reason}"[:32768]
    set_condition(status, WORKER_POD, False, "CreateRefused", message, generation, facts.now)
    if status == facts.status:
        return Decision(status=None)
    return Decision(status=status, actions=[Emit("WorkerPodRefused", message, warning=True)])
