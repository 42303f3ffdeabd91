"""Find Prometheus and promtool ($DATAJOBS_PROMETHEUS_BIN, then their own cache), or build them from the Go
module with build-prometheus.sh (pinned; one build at a time per cache)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

PROMETHEUS_MODULE_VERSION = "v0.316.0"  # github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0
NAMES = ("prometheus", "promtool")
ENV_BIN_DIR = "DATAJOBS_PROMETHEUS_BIN"
ENV_CACHE = "DATAJOBS_CACHE"
BUILD_SCRIPT = Path(__file__).with_name("build-prometheus.sh")


class PrometheusUnavailable(RuntimeError):
    """Neither found nor buildable; the message says why."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`~/.cache/datajobs/bin-prometheus-<module version>/` (or under $DATAJOBS_CACHE)."""
    env = os.environ if env is None else env
    root = Path(env[ENV_CACHE]) if env.get(ENV_CACHE) else Path.home() / ".cache" / "datajobs"
    return root / f"bin-prometheus-{PROMETHEUS_MODULE_VERSION}"


def find(env: Mapping[str, str] | None = None) -> dict[str, Path] | None:
    """Both executables from $DATAJOBS_PROMETHEUS_BIN or the cache; None if either is missing."""
    env = os.environ if env is None else env
    search = [Path(env[ENV_BIN_DIR])] if env.get(ENV_BIN_DIR) else []
    search.append(cache_dir(env))
    for directory in search:
        paths = {name: directory / name for name in NAMES}
        if all(p.is_file() and os.access(p, os.X_OK) for p in paths.values()):
            return {name: p.resolve() for name, p in paths.items()}
    return None


def ensure(env: Mapping[str, str] | None = None, script: Path = BUILD_SCRIPT) -> dict[str, Path]:
    """Find both, building them into the cache when missing; raises PrometheusUnavailable with the reason."""
    env = dict(os.environ if env is None else env)
    found = find(env)
    if found is not None:
        return found
    out = cache_dir(env)
    out.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("go", path=env.get("PATH")) is None:
        raise PrometheusUnavailable(
            f"prometheus and promtool are missing and there is no `go` on PATH to build them: install Go "
            f">= 1.26, or set {ENV_BIN_DIR} to a directory holding both"
        )
    env["PROMETHEUS_MODULE_VERSION"] = PROMETHEUS_MODULE_VERSION
    build_log = out.parent / "build-prometheus.log"
    with (out.parent / "build-prometheus.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if find(env) is None:
            with build_log.open("a") as sink:
                proc = subprocess.run(
                    ["bash", str(script), str(out)],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if proc.returncode != 0:
                tail = "\n".join(build_log.read_text(errors="replace").splitlines()[-30:])
                raise PrometheusUnavailable(f"building Prometheus failed (exit {proc.returncode}):\n{tail}")
    found = find(env)
    if found is None:
        raise PrometheusUnavailable(f"the build finished but prometheus or promtool is missing from {out}")
    return found
