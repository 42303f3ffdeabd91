"""Find the control plane's binaries ($DATAJOBS_K8S_BIN, then the cache), or build them from Go modules."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.5"

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE = ("kubelet", "kube-proxy")
"""The real node's binaries (the container runtime comes from Debian packages: scripts/node.sh)."""
ALL = (*CONTROL_PLANE, "kubectl", *NODE, "helm")
ENV_BIN_DIR = "DATAJOBS_K8S_BIN"
ENV_CACHE = "DATAJOBS_CACHE"
BUILD_SCRIPT = Path(__file__).with_name("build-control-plane.sh")


class BinariesError(RuntimeError):
    """The binaries are neither present nor buildable; the message says why."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the resolved executables, by name."""

    paths: Mapping[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    @property
    def bin_dir(self) -> Path:
        """The directory holding kube-apiserver (where the control plane comes from)."""
        return self.paths["kube-apiserver"].parent


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """`~/.cache/datajobs/` (or $DATAJOBS_CACHE): where every slow one-time build goes."""
    env = os.environ if env is None else env
    return Path(env[ENV_CACHE]) if env.get(ENV_CACHE) else Path.home() / ".cache" / "datajobs"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`~/.cache/datajobs/bin-k8s-<version>/` (or under $DATAJOBS_CACHE): where builds go."""
    return cache_root(env) / f"bin-k8s-{K8S_VERSION}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binaries(
    names: Iterable[str] = CONTROL_PLANE, env: Mapping[str, str] | None = None
) -> Binaries | None:
    """Resolve each binary from $DATAJOBS_K8S_BIN, else the cache; None if any is missing."""
    env = os.environ if env is None else env
    search = [Path(env[ENV_BIN_DIR])] if env.get(ENV_BIN_DIR) else []
    search.append(cache_dir(env))
    found: dict[str, Path] = {}
    for name in names:
        for directory in search:
            candidate = directory / name
            if _executable(candidate):
                found[name] = candidate.resolve()
                break
        else:
            return None
    return Binaries(found)


def missing(names: Iterable[str] = CONTROL_PLANE, env: Mapping[str, str] | None = None) -> list[str]:
    """Names that neither $DATAJOBS_K8S_BIN nor the cache holds."""
    return [n for n in names if find_binaries([n], env) is None]


def build(
    names: Iterable[str] = CONTROL_PLANE, env: Mapping[str, str] | None = None, script: Path = BUILD_SCRIPT
) -> None:
    """Build the missing binaries into the cache with the pinned versions; raises BinariesError."""
    env = dict(os.environ if env is None else env)
    out = cache_dir(env)
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = missing(names, env)
    if not todo:
        return
    if shutil.which("go", path=env.get("PATH")) is None:
        raise BinariesError(
            f"missing {', '.join(todo)} and no `go` on PATH to build them: install Go >= 1.24, or set "
            f"{ENV_BIN_DIR} to a directory holding {', '.join(CONTROL_PLANE)}"
        )
    env.update(
        K8S_VERSION=K8S_VERSION,
        ETCD_VERSION=ETCD_VERSION,
        KWOK_VERSION=KWOK_VERSION,
        HELM_VERSION=HELM_VERSION,
    )
    build_log = out.parent / f"build-{K8S_VERSION}.log"
    # One build at a time per cache: a concurrent `make control-plane` and test session wait for each other.
    with (out.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        todo = missing(names, env)
        if not todo:
            return
        targets = sorted({_target(n) for n in todo})
        log.warning(
            "building %s (pinned: kubernetes %s, etcd %s, kwok %s, helm %s); log: %s; the first "
            "build takes several minutes",
            ", ".join(todo),
            K8S_VERSION,
            ETCD_VERSION,
            KWOK_VERSION,
            HELM_VERSION,
            build_log,
        )
        started = time.monotonic()
        with build_log.open("a") as sink:
            for target in targets:
                proc = subprocess.run(
                    ["bash", str(script), str(out), target],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                if proc.returncode != 0:
                    raise BinariesError(
                        f"building {target} failed (exit {proc.returncode}); last lines of {build_log}:\n"
                        + _tail(build_log)
                    )
        log.info("built %s in %.0f s", ", ".join(todo), time.monotonic() - started)
    still = missing(names, env)
    if still:
        raise BinariesError(f"the build finished but {', '.join(still)} is still missing from {out}")


def _target(name: str) -> str:
    """The build script's target that produces `name`."""
    if name in NODE:
        return "node"
    return "kubernetes" if name.startswith("kube-") else name


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read the log: {exc})"


def ensure_binaries(names: Iterable[str] = CONTROL_PLANE, env: Mapping[str, str] | None = None) -> Binaries:
    """Find the binaries, building the missing ones into the cache; raises BinariesError with the reason."""
    names = tuple(names)
    found = find_binaries(names, env)
    if found is not None:
        return found
    build(names, env)
    found = find_binaries(names, env)
    if found is None:
        raise BinariesError(f"binaries still missing after the build: {', '.join(missing(names, env))}")
    return found
