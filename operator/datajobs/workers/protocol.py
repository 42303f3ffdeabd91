"""The worker side of docs/worker-protocol.md: exit codes, DATAJOBS_* inputs and the termination message."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datajobs.core.report import ANNOTATION_RESULT, ReportTooLarge, encode_report
from datajobs.workers.podapi import PodApi, PodApiError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STOPPED = 143

ANNOTATION_CANCEL_MODE = "datajobs.io/cancel-mode"
ANNOTATION_PROGRESS = "datajobs.io/progress"
TERMINATION_LOG_ENV = "DATAJOBS_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
MESSAGE_LIMIT = 4096


class ConfigError(Exception):
    """Missing or invalid input (DATAJOBS_* variables, connection settings, masking rules): exit code 2."""


def require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def json_env(env: Mapping[str, str], name: str, default: Any) -> Any:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc.msg}") from exc


def fit_message(report: dict[str, Any], shrinkable: tuple[str, ...] = ()) -> str:
    """The report as compact JSON of at most 4096 bytes.

    When it is too long, the lists named in `shrinkable` lose items from the end (the count of dropped items
    goes to `<key>Truncated`), then string values are shortened; the result is always valid JSON."""
    report = dict(report)

    def encoded() -> bytes:
        return json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode()

    for key in shrinkable:
        items = list(report.get(key) or [])
        dropped = 0
        while items and len(encoded()) > MESSAGE_LIMIT:
            items.pop()
            dropped += 1
            report[key] = items
            report[f"{key}Truncated"] = dropped
    limit = 512
    while len(encoded()) > MESSAGE_LIMIT and limit >= 16:
        report = {
            k: (v[:limit] + "…" if isinstance(v, str) and len(v) > limit else v) for k, v in report.items()
        }
        limit //= 2
    data = encoded()
    if len(data) > MESSAGE_LIMIT:  # still too long: keep only the scalar fields
        report = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
        data = encoded()
    return data.decode()


def write_termination_message(report: dict[str, Any], shrinkable: tuple[str, ...] = ()) -> None:
    """Write the final report where the kubelet reads it ($DATAJOBS_TERMINATION_LOG for local runs)."""
    path = Path(os.environ.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG)
    text = fit_message(report, shrinkable)
    try:
        with path.open("w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        log.error("could not write the termination message to %s: %s", path, exc)
    log.info("final report: %s", text)


def publish_result(api: PodApi | None, report: dict[str, Any]) -> bool:
    """Put the full report on the pod's `datajobs.io/result` annotation (the operator prefers it to the
    4096-byte termination message); False when there is no pod API or it refused."""
    if api is None:
        return False
    try:
        api.annotate({ANNOTATION_RESULT: encode_report(report)})
        return True
    except (PodApiError, ReportTooLarge) as exc:
        log.warning("the full report is not on the pod (%s): the termination message has what fits", exc)
        return False
