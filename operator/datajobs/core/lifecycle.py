"""The job lifecycle as one pure function: (spec, status, observed pod, queue facts) -> new status + actions.

Every state change the operator makes is decided here; handlers only gather the facts and apply the
result. A decision depends only on its inputs, so re-running it after a crash or a conflict is safe.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from datajobs.core.actions import Action, CreatePod, DeletePod, Emit, KeepLogs, Recheck
from datajobs.core.conditions import (
    ATTEMPTS,
    CANCEL_REQUEST,
    CANCELLING,
    DEADLINE_EXCEEDED,
    FINISHED,
    RETRYING,
    WORKER_POD,
    get_condition,
    set_condition,
)
from datajobs.core.limits import (
    clear_stuck,
    deadline_passed,
    expire,
    in_deadline_stop,
    limit,
    seconds_between,
    waiting_to_retry,
    watch_stuck,
)
from datajobs.core.report import decode_report
from datajobs.core.shapes import SHAPES, MalformedReport, StatusShape, report_summary
from datajobs.models import TERMINAL_STATUSES, JobStatus
from datajobs.models.kinds import INTEGRITY_JOB

CREATE_RETRY_FIRST_SECONDS = 2.0  # a refused pod create is tried again after 2, 4, 8, … seconds
CREATE_RETRY_MAX_SECONDS = 300.0
CANCEL_EVALUATED = "cancelRequestEvaluated"  # status: the request the CancelRequest condition judged
DEFAULT_START_DEADLINE_SECONDS = 300
# waiting reasons every pod passes through on its way to running: not worth a status write
ROUTINE_WAITING = frozenset({"", "ContainerCreating", "PodInitializing"})
START_DEADLINE_EXCEEDED = "StartDeadlineExceeded"
IMMEDIATE_GRACE_SECONDS = 5
"""Grace of an immediate stop. Not 0 (a force delete: the pod would vanish while it runs) and not 1: the
worker needs up to 1.5 s after SIGTERM (read its pod, cancel the statement, write the report naming what
it left disabled), and the kubelet kills it at the grace. A prompt worker is gone long before this ends."""
DEFAULT_GRACE_SECONDS = 30
CREATE_FIRST_KINDS = frozenset({INTEGRITY_JOB.kind})
"""Kinds whose worker pod is created before the dispatch's status write, which then records the pod too
(one status write instead of two; a crash in between leaves a QUEUED job with its pod: adopted, above).
Not a MaskingExecution: its pod's environment carries the executionId, which must be in the status before
the pod exists (a crash in between would give the job another one than its worker has)."""
LAST_OUTPUT_CHARS = 1000
TERMINATION_REASONS = {"OOMKilled": "OOMKilled: the container exceeded its memory limit"}
"""How the kubelet's reason for a terminated container is told in a FAILED job's message."""


@dataclass(frozen=True)
class PodFacts:
    """What the operator observed of a job's worker pod."""

    name: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    uid: str = ""
    deleting: bool = False
    exit_code: int | None = None
    termination_message: str = ""
    termination_reason: str = ""
    progress: str = ""  # the raw datajobs.io/progress annotation
    result: str = ""  # the raw datajobs.io/result annotation: the full final report, when the worker wrote it
    grace_seconds: int = DEFAULT_GRACE_SECONDS  # the pod's terminationGracePeriodSeconds
    waiting_reason: str = ""  # why the worker is not running yet: ImagePullBackOff, Unschedulable, …
    waiting_message: str = ""
    finalizers: tuple[str, ...] = ()  # what may hold a deleted pod in the API server
    node_name: str = ""
    deletion_grace_seconds: int | None = None  # the grace of the deletion under way, if any


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
    start_deadline_seconds: float = DEFAULT_START_DEADLINE_SECONDS  # the operator's default
    gone_pod: PodFacts | None = None  # the worker pod's last state, once it is gone (its final report)
    active_deadline_seconds: float | None = None  # the operator's default (None: no deadline)
    ttl_seconds_after_finished: float | None = None  # the operator's default (None: finished jobs stay)


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
    adopted = current is JobStatus.QUEUED and facts.pod is not None
    if adopted:  # its pod was created, and the status recording it lost (a crash): it was dispatched
        status["status"] = JobStatus.RUNNING.value
        status[shape.started] = now
        current = JobStatus.RUNNING
    cancel = facts.spec.get("cancelRequested")
    unevaluated = cancel is not None and _new_request(status, cancel, generation, current)

    if unevaluated and cancel is not None:  # (unevaluated implies it; this tells the type checker)
        status[CANCEL_EVALUATED] = copy.deepcopy(cancel)
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
                    actions.append(KeepLogs(facts.pod.name, facts.pod.uid, "cancel"))
                    actions.append(_delete(facts.pod, bool(cancel.get("graceful"))))

    current = JobStatus(status["status"])
    cancelling = get_condition(status, CANCELLING)
    in_cancel = current is JobStatus.RUNNING and cancelling is not None and cancelling["status"] == "True"

    if in_cancel:
        _remember_pod_report(shape, status, facts.pod)
        if facts.pod is None:
            _remember_pod_report(shape, status, facts.gone_pod)
            set_condition(status, CANCELLING, False, "WorkerGone", "the worker pod is gone", generation, now)
            clear_stuck(status, generation, now)
            _worker_gone(status, generation, now)
            said = _summary(facts.gone_pod) if facts.gone_pod else ""
            _finish(
                shape,
                status,
                JobStatus.CANCELLED,
                "cancelled; the worker pod is gone" + (f"; the worker reported: {said}" if said else ""),
                generation,
                now,
                actions,
            )
        else:
            graceful = bool((cancel or {}).get("graceful"))
            if not facts.pod.deleting and not any(isinstance(a, DeletePod) for a in actions):
                actions.append(KeepLogs(facts.pod.name, facts.pod.uid, "cancel"))
                actions.append(_delete(facts.pod, graceful))
            since = str((cancelling or {}).get("lastTransitionTime") or now)
            escalate = (cancel or {}).get("escalateAfterSeconds")
            grace = _delete(facts.pod, graceful).grace_seconds
            watch_stuck(facts.pod, since, grace, escalate, status, generation, now, actions)
    elif current is JobStatus.RUNNING and in_deadline_stop(status):
        _deadline_stop(shape, facts, status, generation, actions)
    elif current is JobStatus.RUNNING and waiting_to_retry(status):
        _retry_wait(shape, facts, status, generation, actions)
    elif current is JobStatus.RUNNING:
        deadline = limit(facts.spec, "activeDeadlineSeconds", facts.active_deadline_seconds)
        started = status.get(shape.started)
        if deadline_passed(deadline, started, facts.pod, status, generation, now, actions):
            _deadline_stop(shape, facts, status, generation, actions)
        elif not _retried(shape, facts, status, generation, actions):
            _running(shape, facts, status, generation, actions)
    elif current in TERMINAL_STATUSES and _left_unstarted(status, facts.pod):
        assert facts.pod is not None
        actions.append(_delete(facts.pod, graceful=False))  # (again, if the first delete was lost)
    elif current is JobStatus.QUEUED and facts.may_dispatch:  # any cancel left here was rejected
        _dispatch(shape, facts.kind, status, generation, now, actions)

    ran = facts.pod is not None and facts.pod.phase != "Pending"  # a pod that never started has no log
    failed_now = status["status"] == "FAILED" and old.get("status") not in TERMINAL_STATUSES
    if ran and facts.pod is not None and failed_now:
        # before anyone removes it; also when a lost status write left the job QUEUED (adopted above)
        actions.append(KeepLogs(facts.pod.name, facts.pod.uid, "failure"))
    if JobStatus(status["status"]) in TERMINAL_STATUSES:
        ttl = limit(facts.spec, "ttlSecondsAfterFinished", facts.ttl_seconds_after_finished)
        expire(ttl, status.get(shape.ended), now, actions)
    if not old.get("status") and (adopted or any(isinstance(a, CreatePod) for a in actions)):
        actions = [a for a in actions if not (isinstance(a, Emit) and a.reason == "Queued")]  # never waited
    return Decision(status=None if status == old else status, actions=actions)


def _deadline_stop(
    shape: StatusShape, facts: JobFacts, status: dict[str, Any], generation: int, actions: list[Action]
) -> None:
    """Past its deadline: stop the worker gracefully; FAILED (DeadlineExceeded) only once its pod is gone."""
    pod, now = facts.pod, facts.now
    exceeded = get_condition(status, DEADLINE_EXCEEDED) or {}
    _remember_pod_report(shape, status, pod)
    if pod is None:
        _remember_pod_report(shape, status, facts.gone_pod)
        clear_stuck(status, generation, now)
        _worker_gone(status, generation, now)
        said = _summary(facts.gone_pod) if facts.gone_pod else ""
        message = (
            f"{exceeded.get('message', 'deadline exceeded')}; the worker was stopped and its pod is gone"
        )
        if said:
            message += f"; the worker reported: {said}"
        _finish(shape, status, JobStatus.FAILED, message, generation, now, actions, DEADLINE_EXCEEDED)
        return
    if not pod.deleting:
        actions.append(KeepLogs(pod.name, pod.uid, "deadline"))
        actions.append(_delete(pod, graceful=True))
    since = str(exceeded.get("lastTransitionTime") or now)
    watch_stuck(pod, since, _delete(pod, True).grace_seconds, None, status, generation, now, actions)


def _retried(
    shape: StatusShape, facts: JobFacts, status: dict[str, Any], generation: int, actions: list[Action]
) -> bool:
    """A worker pod that failed (not the user's doing: a crash, an exit code, OOM) with attempts left under
    spec.backoffLimit: keep its log, remove it, and wait to start the next attempt (True)."""
    pod = facts.pod
    backoff_limit = int(facts.spec.get("backoffLimit") or 0)
    attempt = int(status.get(ATTEMPTS) or 1)
    if pod is None or pod.phase != "Failed" or attempt > backoff_limit:
        return False
    trial = copy.deepcopy(status)
    _running(shape, facts, trial, generation, [])
    if trial.get("status") != JobStatus.FAILED.value:
        return False
    why = (get_condition(trial, FINISHED) or {}).get("message", "worker failed")
    delay = create_retry_seconds(attempt - 1)
    message = f"attempt {attempt} of {backoff_limit + 1} failed: {why}; the next in {delay:g} s"[:32768]
    status[ATTEMPTS] = attempt + 1
    set_condition(status, RETRYING, True, "BackoffWaiting", message, generation, facts.now)
    set_condition(
        status, WORKER_POD, False, "Retrying", f"removing failed worker pod {pod.name}", generation, facts.now
    )
    actions.append(Emit("Retrying", message, warning=True))
    actions.append(KeepLogs(pod.name, pod.uid, "failure"))
    if not pod.deleting:
        actions.append(_delete(pod, graceful=False))
    actions.append(Recheck(delay))
    return True


def _retry_wait(
    shape: StatusShape, facts: JobFacts, status: dict[str, Any], generation: int, actions: list[Action]
) -> None:
    """Between attempts: the failed pod goes, then after its backoff the next attempt's pod is created."""
    pod, now = facts.pod, facts.now
    if pod is not None:
        if not pod.deleting:
            actions.append(_delete(pod, graceful=False))
        return
    deadline = limit(facts.spec, "activeDeadlineSeconds", facts.active_deadline_seconds)
    started = str(status.get(shape.started) or now)
    if deadline is not None and seconds_between(started, now) >= deadline:
        message = (
            f"the job ran longer than its deadline of {deadline:g} s (activeDeadlineSeconds) between attempts"
        )
        set_condition(status, RETRYING, False, DEADLINE_EXCEEDED, message, generation, now)
        _finish(shape, status, JobStatus.FAILED, message, generation, now, actions, DEADLINE_EXCEEDED)
        return
    waiting = get_condition(status, RETRYING) or {}
    attempt = int(status.get(ATTEMPTS) or 2)
    left = create_retry_seconds(attempt - 2) - seconds_between(
        str(waiting.get("lastTransitionTime") or now), now
    )
    if left > 0:
        actions.append(Recheck(left))
        return
    message = f"attempt {attempt} of {int(facts.spec.get('backoffLimit') or 0) + 1} started"
    set_condition(status, RETRYING, False, "AttemptStarted", message, generation, now)
    set_condition(status, WORKER_POD, False, "Creating", "creating the worker pod", generation, now)
    actions.append(CreatePod())
    actions.append(Emit("Dispatched", f"worker pod created ({message})"))


def _new_request(status: dict[str, Any], cancel: dict[str, Any], generation: int, current: JobStatus) -> bool:
    """Whether spec.cancelRequested still needs a verdict: it differs from the request last judged (its
    content, not the generation: an unrelated change never re-opens a rejected or accepted request)."""
    evaluated = get_condition(status, CANCEL_REQUEST)
    if evaluated is None:
        return True
    if _accepted_and_finished(evaluated, current):
        return False
    if CANCEL_EVALUATED in status:
        return bool(status[CANCEL_EVALUATED] != cancel)
    return bool(evaluated.get("observedGeneration") != generation)  # a verdict written before the field


def _accepted_and_finished(evaluated: dict[str, Any], current: JobStatus) -> bool:
    """An accepted cancel of a finished job stays accepted, whatever else changes in the spec later."""
    return evaluated.get("status") == "True" and current in TERMINAL_STATUSES


def _dispatch(
    shape: StatusShape, kind: str, status: dict[str, Any], generation: int, now: str, actions: list[Action]
) -> None:
    status["status"] = JobStatus.RUNNING.value
    status[shape.started] = now
    set_condition(status, WORKER_POD, False, "Creating", "creating the worker pod", generation, now)
    # no Event: the status (startedAt, WorkerPod) and the scheduler's own Scheduled Event on the pod tell
    # it; an Event per dispatch was a seventh API write per job (a retry's next attempt still gets one)
    actions.append(CreatePod(first=kind in CREATE_FIRST_KINDS))


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
        elif not _start_deadline_passed(shape, facts, status, generation, actions):
            # dispatched, but the pod was never seen: the create did not happen (a crash, a refusal) — do it
            actions.append(CreatePod())
        return
    if pod.phase == "Pending":
        if _start_deadline_passed(shape, facts, status, generation, actions):
            return
        if pod.waiting_reason not in ROUTINE_WAITING:
            reason = _condition_reason(pod.waiting_reason)
            set_condition(status, WORKER_POD, True, reason, _waiting_message(pod), generation, now)
            return
    if worker is None or worker["status"] != "True" or worker["reason"] != "Observed":
        set_condition(status, WORKER_POD, True, "Observed", f"worker pod {pod.name} exists", generation, now)
    if pod.progress:
        try:
            shape.apply_progress(status, _json_object(pod.progress))
        except MalformedReport:
            pass  # progress is best effort; the final report decides
    if pod.phase not in ("Succeeded", "Failed"):
        return
    try:
        claimed = shape.apply_result(status, _final_report(pod))
    except MalformedReport as exc:
        if pod.phase == "Failed" and not pod.result:
            # killed or crashed before any report: FallbackToLogsOnError left its last log lines here
            # (in the condition and the Event; the status's own message field stays the outcome alone)
            last = pod.termination_message.strip()[-LAST_OUTPUT_CHARS:]
            message = _outcome_message(status, shape, JobStatus.FAILED, pod)
            detail = f"; its last output: {last}"
        else:
            where = "result annotation" if pod.result else "termination message"
            message, detail = f"malformed {where}: {exc}", ""
        _finish(shape, status, JobStatus.FAILED, message, generation, now, actions, detail=detail)
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


def _start_deadline_passed(
    shape: StatusShape, facts: JobFacts, status: dict[str, Any], generation: int, actions: list[Action]
) -> bool:
    """A worker not running yet: past its start deadline the job FAILED with the reason and its pod is
    removed (True); before it, a recheck at the deadline is asked for (False)."""
    deadline = float(facts.spec.get("startDeadlineSeconds") or facts.start_deadline_seconds)
    started = status.get(shape.started)
    retry = get_condition(status, RETRYING)
    if retry is not None and retry.get("reason") == "AttemptStarted":  # a later attempt: from its start
        started = retry.get("lastTransitionTime") or started
    elapsed = seconds_between(str(started), facts.now) if started else 0.0
    if elapsed < deadline:
        actions.append(Recheck(deadline - elapsed + 0.5))
        return False
    worker = get_condition(status, WORKER_POD) or {}
    why = worker.get("message") or "no worker pod"
    if facts.pod is not None and facts.pod.waiting_reason not in ROUTINE_WAITING:
        why = _waiting_message(facts.pod)
    elif facts.pod is not None:
        why = f"worker pod {facts.pod.name} is still {facts.pod.phase}"
    message = f"the worker did not start within {deadline:g} s (startDeadlineSeconds): {why}"[:32768]
    set_condition(status, WORKER_POD, False, START_DEADLINE_EXCEEDED, message, generation, facts.now)
    _finish(shape, status, JobStatus.FAILED, message, generation, facts.now, actions)
    if facts.pod is not None and not facts.pod.deleting:
        actions.append(_delete(facts.pod, graceful=False))
    return True


def _waiting_message(pod: PodFacts) -> str:
    return f"worker pod {pod.name} is not running: {pod.waiting_reason}: {pod.waiting_message}"[:32768]


def _left_unstarted(status: dict[str, Any], pod: PodFacts | None) -> bool:
    """A job that failed at its start deadline, whose pod is still there and not being deleted."""
    worker = get_condition(status, WORKER_POD)
    return (
        pod is not None
        and not pod.deleting
        and worker is not None
        and worker.get("reason") == START_DEADLINE_EXCEEDED
    )


def _condition_reason(text: str) -> str:
    """A waiting reason as a condition reason (CamelCase letters, digits, `_,:`; never empty)."""
    cleaned = re.sub(r"[^A-Za-z0-9_,:]", "", text).lstrip("0123456789_,:").rstrip(",:")
    return cleaned[:1024] or "Waiting"


def _final_report(pod: PodFacts) -> str:
    """The worker's final report: its result annotation (complete) if it wrote one, else the termination
    message (at most 4096 bytes). Raises MalformedReport for an annotation that does not decode."""
    if not pod.result:
        return pod.termination_message
    try:
        return decode_report(pod.result)
    except ValueError as exc:
        raise MalformedReport(str(exc)) from exc


def _outcome_message(status: dict[str, Any], shape: StatusShape, outcome: JobStatus, pod: PodFacts) -> str:
    field_name = shape.message_field()
    reported = status.get(field_name, "") if field_name else _summary(pod)
    if outcome is JobStatus.FAILED:
        why = TERMINATION_REASONS.get(pod.termination_reason, pod.termination_reason or "Error")
        base = f"worker failed (exit code {pod.exit_code}, {why})"
        return f"{base}: {reported}" if reported else base
    return reported or f"worker finished: {outcome.value}"


def _summary(pod: PodFacts) -> str:
    """The worker's report told for people (its message, what it left disabled); "" when there is none."""
    try:
        return report_summary(_final_report(pod))
    except MalformedReport:
        return ""


def _remember_pod_report(shape: StatusShape, status: dict[str, Any], pod: PodFacts | None) -> None:
    """Keep what a cancelled worker reported (counts so far) — but its claimed status never wins."""
    if pod is None:
        return
    if pod.progress:
        try:
            shape.apply_progress(status, _json_object(pod.progress))
        except MalformedReport:
            pass
    if pod.phase in ("Succeeded", "Failed") and (pod.result or pod.termination_message):
        try:
            shape.apply_result(status, _final_report(pod))
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
    reason: str | None = None,
    detail: str = "",
) -> None:
    """End the job; `detail` (a crashed worker's last output) goes to the condition and the Event only."""
    status["status"] = outcome.value
    status[shape.ended] = now
    field_name = shape.message_field()
    if field_name and (outcome in (JobStatus.FAILED, JobStatus.CANCELLED) or not status.get(field_name)):
        status[field_name] = message
    reason = reason or outcome.value.capitalize()
    set_condition(status, FINISHED, True, reason, message + detail, generation, now)
    actions.append(Emit(reason, message + detail, warning=outcome is JobStatus.FAILED))


def _delete(pod: PodFacts, graceful: bool) -> DeletePod:
    grace = max(pod.grace_seconds, IMMEDIATE_GRACE_SECONDS) if graceful else IMMEDIATE_GRACE_SECONDS
    return DeletePod(name=pod.name, uid=pod.uid, graceful=graceful, grace_seconds=grace)


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


def create_retry_seconds(attempt: int) -> float:
    """How long to wait before creating a refused worker pod again: doubling from 2 s, at most 5 minutes."""
    return min(CREATE_RETRY_FIRST_SECONDS * 2 ** max(attempt, 0), CREATE_RETRY_MAX_SECONDS)


def worker_name_taken(facts: JobFacts, pod_name: str, owner_uid: str | None) -> Decision:
    """A pod this job does not own holds the worker's name: say so on the job (once per distinct message)
    and leave that pod alone; the create is tried again later."""
    status = copy.deepcopy(facts.status or {})
    generation = int(facts.meta.get("generation") or 1)
    whose = f"controlled by uid {owner_uid}" if owner_uid else "with no controller"
    message = (
        f"pod {pod_name} already exists and is not this job's worker ({whose}); it is left alone, and the "
        "worker is created once that name is free"
    )
    set_condition(status, WORKER_POD, False, "NameTaken", message, generation, facts.now)
    if status == facts.status:
        return Decision(status=None)
    return Decision(status=status, actions=[Emit("WorkerPodNameTaken", message, warning=True)])


def status_refused(facts: JobFacts, reason: str) -> Decision:
    """The API server refused the status the operator decided (e.g. a number it cannot hold): the job
    FAILED with the reason, on its last status the server accepted, instead of a write retried forever."""
    shape = SHAPES[facts.kind]
    status = copy.deepcopy(facts.status or {})
    actions: list[Action] = []
    generation = int(facts.meta.get("generation") or 1)
    if not status.get("status"):
        status = shape.initial(facts.meta, facts.spec, facts.now, facts.execution_id)
    message = f"the API server refused the job's status: {reason}"[:32768]
    _finish(shape, status, JobStatus.FAILED, message, generation, facts.now, actions)
    return Decision(status=status, actions=actions)
