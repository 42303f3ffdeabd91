"""`python -m bench.pprof_compare A B`: two kube-apiserver CPU profiles side by side, by what served the work.

Each sample goes to the first bucket its stack matches: the registry (resource, verb) whose storage code is on
it, else the request handler, else the Go GC, the etcd watch and watch-cache decoding, or "other".
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

_SEPARATOR = "-----------+-------------------------------------------------------"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_VALUE = re.compile(r"\s*([\d.]+)(us|ms|s)\s+(.*)")
_REGISTRY = re.compile(
    r"k8s\.io/kubernetes/pkg/registry/([\w/]+)\.\(\*(\w+)\)\.(\w+)"
    r"|apiextensions-apiserver/pkg/registry/customresource\.\(\*(\w+)\)\.(\w+)"
)
_HANDLER = re.compile(r"endpoints/handlers\.(\w+Resource|createHandler|\(\*patcher\)\.patchResource)")
_OTHERS = (
    ("Go GC", re.compile(r"gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge")),
    ("etcd watch + watch cache", re.compile(r"storage/etcd3\.\(\*watchChan\)|storage/cacher\.")),
    ("serving watches", re.compile(r"handlers\.\(\*WatchServer\)|serveWatch")),
)


def traces(path: str) -> list[tuple[float, list[str]]]:
    """(milliseconds, frames leaf first) per distinct stack, from `go tool pprof -traces`."""
    out = subprocess.run(["go", "tool", "pprof", "-traces", path], capture_output=True, text=True, check=True)
    result = []
    for block in out.stdout.split(_SEPARATOR)[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        match = _VALUE.match(lines[0]) if lines else None
        if match:
            frames = [match[3].strip(), *(line.strip() for line in lines[1:])]
            result.append((float(match[1]) * _UNITS[match[2]], frames))
    return result


def bucket(frames: Sequence[str]) -> str:
    for frame in reversed(frames):  # the outermost registry frame names the resource
        match = _REGISTRY.search(frame)
        if match:
            return (
                f"{match[1]} {match[2]}.{match[3]}" if match[1] else f"customresource {match[4]}.{match[5]}"
            )
    if any("apiextensions-apiserver/pkg/apiserver." in frame for frame in frames):
        return "customresource handler (create: admission, managedFields, storage)"
    for frame in reversed(frames):
        match = _HANDLER.search(frame)
        if match:
            return f"handler {match[1]}"
    text = "\n".join(frames)
    return next((name for name, rx in _OTHERS if rx.search(text)), "other")


def by_bucket(path: str) -> Counter[str]:
    totals: Counter[str] = Counter()
    for ms, frames in traces(path):
        totals[bucket(frames)] += ms
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pprof_compare", description=__doc__)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument(
        "--per", type=float, nargs=2, default=(1.0, 1.0), help="divide A and B by these (e.g. jobs)"
    )
    args = p.parse_args(argv)
    a, b = by_bucket(args.a), by_bucket(args.b)
    per_a, per_b = args.per
    rows = ["| bucket | A ms | B ms | B - A |", "|---|---|---|---|"]
    for key in sorted(set(a) | set(b), key=lambda k: -(a[k] + b[k])):
        x, y = a[key] / per_a, b[key] / per_b
        rows.append(f"| {key} | {x:.2f} | {y:.2f} | {y - x:+.2f} |")
    x, y = sum(a.values()) / per_a, sum(b.values()) / per_b
    rows.append(f"| **all** | {x:.2f} | {y:.2f} | {y - x:+.2f} |")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
