"""Test support for `datajobs dev`: the command as a real subprocess, its `ready:` line, its descendants."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from helpers import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready_fields(line: str) -> dict[str, str]:
    """`ready: k=v k=v ... node=fake (reason)` -> {k: v}, with the reason (if any) under "reason"."""
    head, _, reason = line.removeprefix("ready:").partition(" (")
    fields = dict(part.split("=", 1) for part in head.split())
    if reason:
        fields["reason"] = reason.removesuffix(")")
    return fields


class Dev:
    """One `datajobs dev` process (its own session) with its stdout/stderr in files."""

    def __init__(
        self, directory: Path, port: int, logs: Path, name: str, extra: tuple[str, ...] = ()
    ) -> None:
        self.directory, self.port = directory, port
        self.out, self.err = logs / f"{name}.out", logs / f"{name}.err"
        argv = [
            sys.executable,
            "-m",
            "datajobs.cli",
            "dev",
            "--dir",
            str(directory),
            "--adapter-port",
            str(port),
        ]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*argv, *extra], stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def output(self) -> str:
        return self.out.read_text()

    def errors(self) -> str:
        return self.err.read_text(errors="replace")[-4000:]

    def ready_line(self, timeout: float = 240) -> str:
        def ready() -> str | None:
            assert self.proc.poll() is None, f"datajobs dev exited {self.proc.returncode}:\n{self.errors()}"
            return next((ln for ln in self.output().splitlines() if ln.startswith("ready:")), None)

        return wait_for(ready, timeout=timeout, interval=0.2, message="the ready: line")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self, timeout: float = 90) -> int:
        """Ctrl-C (SIGINT to the process, as a terminal would) and wait for it to exit."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
