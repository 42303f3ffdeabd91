"""The real node's cgroups, and a detached janitor that removes them after the harness dies, even by SIGKILL.

The node's namespaces end with its PID 1 (processes, mounts, network, iptables all go with them); cgroup
directories do not. The janitor holds the read end of a pipe whose write end only the harness has: when
the harness exits for any reason the read returns EOF, the janitor waits for the node's init to be gone,
kills whatever is still in the node's cgroups, and removes them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
PREFIX = "datajobs-"


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy root (v1 controllers, the named systemd one, and v2 unified)."""
    roots = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            roots.append(Path(fields[1]))
    return roots


def cgroup_name(owner_pid: int, token: str) -> str:
    """`datajobs-<pid of the harness>-<token>`: a stale one is recognised by its owner being dead."""
    return f"{PREFIX}{owner_pid}-{token}"


def create(name: str) -> None:
    """The node's cgroup root in every hierarchy (the kubelet insists it exists), cpuset filled in."""
    for root in hierarchies():
        path = root / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            parent = root / knob
            if parent.exists() and (path / knob).exists():
                (path / knob).write_text(parent.read_text())


def _tasks(path: Path) -> list[int]:
    pids: list[int] = []
    for sub in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        for name in ("cgroup.procs", "tasks"):
            try:
                pids.extend(int(x) for x in (sub / name).read_text().split())
            except (OSError, ValueError):
                pass
    return pids


def remove(name: str, timeout: float = 15.0) -> list[str]:
    """Kill what is left in the node's cgroups and remove them bottom-up; the paths that would not go."""
    deadline = time.monotonic() + timeout
    left: list[str] = []
    for root in hierarchies():
        top = root / name
        if not top.exists():
            continue
        while time.monotonic() < deadline:
            for pid in _tasks(top):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
            for d in [*dirs, top]:
                try:
                    d.rmdir()
                except OSError:
                    pass
            if not top.exists():
                break
            time.sleep(0.1)
        if top.exists():
            left.append(str(top))
    return left


def stale() -> list[str]:
    """Node cgroups whose harness is dead (left by a janitor that was itself killed)."""
    names = set()
    for root in hierarchies():
        for path in root.glob(f"{PREFIX}*"):
            owner = path.name[len(PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                names.add(path.name)
    return sorted(names)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="janitor")
    parser.add_argument("--fd", type=int, required=True, help="read end of the harness's pipe")
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--init-pid", type=int, default=0)
    parser.add_argument("--remove", type=Path, action="append", default=[], help="files to delete")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while os.read(args.fd, 4096):
        pass
    if args.init_pid:
        deadline = time.monotonic() + 10
        while _alive(args.init_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(args.init_pid):
            os.kill(args.init_pid, signal.SIGKILL)
    left = remove(args.cgroup)
    for path in args.remove:
        path.unlink(missing_ok=True)
    if left:
        sys.stderr.write(f"janitor: could not remove {left}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
