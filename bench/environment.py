"""What the numbers were measured on: machine, versions, commit, load."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from datajobs.localcluster.binaries import ETCD_VERSION, K8S_VERSION, KWOK_VERSION

REPO = Path(__file__).resolve().parent.parent


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "operator"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("+uncommitted operator changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def versions(kube_git_version: str) -> dict[str, str]:
    return {
        "kube_apiserver": kube_git_version,
        "kubernetes_pinned": K8S_VERSION,
        "etcd": ETCD_VERSION,
        "kwok": KWOK_VERSION,
        "python": sys.version.split()[0],
        "kopf": _version("kopf"),
        "aiohttp": _version("aiohttp"),
        "kubernetes_asyncio": _version("kubernetes_asyncio"),
        "datajobs_operator": _version("datajobs-operator"),
        "commit": _commit(),
    }


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
