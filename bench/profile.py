"""Sampling profiles of the operator/adapter with py-spy (never pausing the target), summarised by frame."""

from __future__ import annotations

import logging
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    """`py-spy record` on `pid` from start() to stop(); stop() returns the summary (or None if disabled)."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        self.pid = pid
        self.output = output
        self.rate = rate
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Profiler:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        argv = [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
                "--nonblocking", "--output", str(self.output)]  # fmt: skip
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def stop(self) -> dict[str, Any] | None:
        if self._proc is None:
            return None
        self._proc.send_signal(signal.SIGINT)
        try:
            _, err = self._proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        if not self.output.exists():
            log.warning("py-spy wrote no profile: %s", err.decode(errors="replace")[-500:])
            return None
        return summarise(self.output.read_text())


def _frame_key(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    top = path.split("/")[0]
    return top.removesuffix(".py") or path


def summarise(raw: str, top: int = 25) -> dict[str, Any]:
    """Samples by leaf function (self), by function anywhere on the stack (inclusive), and by leaf package."""
    self_count: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_count[_frame_key(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for key in {_frame_key(f) for f in frames}:
            inclusive[key] += count

    def pct(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": k, "samples": v, "percent": round(100 * v / total, 1)}
            for k, v in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self": pct(self_count),
        "inclusive": pct(inclusive),
        "leaf_package": pct(packages),
    }
