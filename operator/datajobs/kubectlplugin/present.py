"""Pure presentation: a job's row (status, queue position, progress, age, why), kubectl's ages and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from datajobs.core.shapes import SHAPES
from datajobs.kubectlplugin.refs import Ref
from datajobs.models import INTEGRITY_JOB

HEADERS = ("NAME", "STATUS", "QUEUE", "PROGRESS", "AGE", "REASON")
WIDE_HEADERS = (*HEADERS, "ID", "MESSAGE")


def ref_of(job: dict[str, Any]) -> Ref:
    meta = job["metadata"]
    return Ref(meta.get("namespace", ""), job["kind"], meta["name"])


def parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's AGE (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def age(job: dict[str, Any], now: datetime) -> str:
    created = parse_time(job["metadata"].get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration((now - created).total_seconds())


def latest_condition(job: dict[str, Any]) -> dict[str, Any] | None:
    """The condition that changed last (by lastTransitionTime; among equals, the later in the list)."""
    conditions = (job.get("status") or {}).get("conditions") or []
    if not conditions:
        return None
    floor = datetime.min.replace(tzinfo=UTC)
    ranked = [(parse_time(c.get("lastTransitionTime")) or floor, i, c) for i, c in enumerate(conditions)]
    return max(ranked, key=lambda t: (t[0], t[1]))[2]


def progress(job: dict[str, Any]) -> str:
    """Rows masked / total for a MaskingExecution, models checked / asked for an IntegrityJob."""
    status = job.get("status") or {}
    if job["kind"] == INTEGRITY_JOB.kind:
        models = status.get("model_ids") or (job.get("spec") or {}).get("modelIds") or []
        checked = {r.get("model_name") for r in status.get("data_integrity_results") or []}
        return f"{len(checked & set(models)) if models else len(checked)}/{len(models)} models"
    masked, total = status.get("rowsMasked"), status.get("rowsTotal")
    if masked is None and total is None:
        return "-"
    if not total:
        return f"{masked or 0:,} rows"
    return f"{masked or 0:,}/{total:,} rows ({100 * (masked or 0) // total}%)"


def submitted_at(job: dict[str, Any]) -> str:
    return str((job.get("status") or {}).get(SHAPES[job["kind"]].submitted) or "")


def queue_positions(jobs: Iterable[dict[str, Any]]) -> dict[Ref, int]:
    """1-based place of each QUEUED job in its kind's FIFO line (the operator's order: submit time, then
    namespace/name). Exact when `jobs` holds every job the operator serves."""
    lines: dict[str, list[tuple[str, str, Ref]]] = {}
    for job in jobs:
        if (job.get("status") or {}).get("status") == "QUEUED":
            ref = ref_of(job)
            lines.setdefault(job["kind"], []).append((submitted_at(job), f"{ref.namespace}/{ref.name}", ref))
    return {ref: i for line in lines.values() for i, (_, _, ref) in enumerate(sorted(line), start=1)}


def job_id(job: dict[str, Any]) -> str:
    status = job.get("status") or {}
    if job["kind"] == INTEGRITY_JOB.kind:
        return str(status.get("id") or job["metadata"].get("uid", ""))
    value = status.get("executionId")
    return "-" if value is None else f"execution {value}"


def row(job: dict[str, Any], positions: dict[Ref, int], now: datetime, wide: bool = False) -> list[str]:
    ref = ref_of(job)
    status = (job.get("status") or {}).get("status") or "-"
    place = positions.get(ref)
    latest = latest_condition(job)
    cells = [
        ref.short,
        status,
        str(place) if place is not None else "-",
        progress(job),
        age(job, now),
        (latest or {}).get("reason") or "-",
    ]
    if wide:
        cells += [job_id(job), (latest or {}).get("message") or "-"]
    return cells


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, like kubectl's printer (the last column is not padded)."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for r in [headers, *rows]:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1], strict=True)] + [r[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def get_table(
    jobs: Sequence[dict[str, Any]],
    positions: dict[Ref, int],
    now: datetime,
    wide: bool = False,
    with_namespace: bool = False,
) -> str:
    ordered = sorted(jobs, key=lambda j: (ref_of(j).namespace, j["kind"], j["metadata"]["name"]))
    headers = list(WIDE_HEADERS if wide else HEADERS)
    rows = [row(j, positions, now, wide) for j in ordered]
    if with_namespace:
        headers.insert(0, "NAMESPACE")
        rows = [[ref_of(j).namespace, *r] for j, r in zip(ordered, rows, strict=True)]
    return table(headers, rows)
