"""Wait for a job to reach a state: get it, then watch it from that resourceVersion until a check answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from datajobs.core.conditions import get_condition
from datajobs.kubectlplugin.api import Api, ApiException, CommandError
from datajobs.kubectlplugin.refs import Ref, UsageError
from datajobs.models import TERMINAL_STATUSES, JobStatus

T = TypeVar("T")
STATUSES = frozenset(s.value for s in JobStatus)
TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)


class WaitTimeout(CommandError):
    """The deadline passed before the check answered."""


class Never(CommandError):
    """The job reached a state the awaited one cannot follow (it finished otherwise, or is gone)."""


def wait_until(api: Api, ref: Ref, check: Callable[[dict[str, Any]], T | None], deadline: float) -> T:
    """The first non-None answer of `check` on the job as it changes; raises WaitTimeout or Never."""
    while True:
        try:
            job = api.get_job(ref)
        except ApiException as exc:
            if exc.status == 404:
                raise Never(f"{ref.short} is gone (deleted)") from exc
            raise
        job.setdefault("kind", ref.kind_name)
        answer = check(job)
        if answer is not None:
            return answer
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out waiting for the condition on {ref.short}")
        try:
            for event_type, obj in api.watch_job(ref, job["metadata"]["resourceVersion"], remaining):
                if event_type == "DELETED":
                    raise Never(f"{ref.short} is gone (deleted)")
                if event_type in ("ADDED", "MODIFIED"):
                    answer = check(obj)
                    if answer is not None:
                        return answer
                if time.monotonic() >= deadline:
                    break
        except ApiException as exc:
            if exc.status != 410:  # Gone: the resourceVersion is too old; get the job again
                raise
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out waiting for the condition on {ref.short}")


@dataclass(frozen=True)
class Condition:
    """What `wait --for=` asks: finished, a status, or a condition's status."""

    text: str
    status: str | None = None  # status=RUNNING; "finished" is any terminal status
    condition: str | None = None  # condition=CancelRequest[=False]
    condition_status: str = "True"

    def check(self, job: dict[str, Any]) -> str | None:
        """ "condition met" when it holds; raises Never when the job finished without it."""
        current = (job.get("status") or {}).get("status")
        if self.condition is not None:
            cond = get_condition(job.get("status"), self.condition)
            generation = int(job["metadata"].get("generation") or 1)
            if (
                cond is not None
                and cond.get("status") == self.condition_status
                and int(cond.get("observedGeneration") or generation) >= generation
            ):
                return "condition met"
            if current in TERMINAL and self.condition != "Finished":
                raise Never(f"{job['kind']}/{job['metadata']['name']} finished {current} without {self.text}")
            return None
        if self.status == "finished":
            return "condition met" if current in TERMINAL else None
        if current == self.status:
            return "condition met"
        if current in TERMINAL:
            raise Never(
                f"{job['kind']}/{job['metadata']['name']} finished {current}; it will never be {self.status}"
            )
        return None


def parse_for(text: str) -> Condition:
    """`finished`, `status=S`, `cancelled` (status=CANCELLED), or `condition=TYPE[=True|False]`."""
    word, _, value = text.partition("=")
    word = word.lower()
    if word in ("finished", "done") and not value:
        return Condition(text, status="finished")
    if word == "cancelled" and not value:
        return Condition(text, status=JobStatus.CANCELLED.value)
    if word == "status" and value.upper() in STATUSES:
        return Condition(text, status=value.upper())
    if word == "condition" and value:
        ctype, _, cstatus = value.partition("=")
        if cstatus and cstatus.capitalize() not in ("True", "False"):
            raise UsageError(f"--for={text}: a condition's status is True or False")
        return Condition(text, condition=ctype, condition_status=(cstatus or "True").capitalize())
    raise UsageError(
        f"--for={text}: use finished, cancelled, status=QUEUED|RUNNING|SUCCEEDED|WARNING|FAILED|CANCELLED, "
        "or condition=TYPE[=True|False]"
    )


def parse_timeout(text: str) -> float:
    """kubectl's durations: 30s, 2m, 1h, 1m30s, or plain seconds; 0 means check once."""
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            number += c
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else c
        if unit not in units or not number:
            raise UsageError(f"invalid duration {text!r} (e.g. 30s, 2m, 1m30s)")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise UsageError(f"invalid duration {text!r}: a number needs a unit (s, m, h)")
    return total
