"""KubeIO.pod_log keeps a log's real last lines when the API server's byte limit cut the tailed window."""

from __future__ import annotations

import asyncio
from typing import Any

from datajobs.controller.kubeio import KubeIO


class KubeletLog:
    """Answers pods/log as the kubelet does: the last tailLines lines, then at most limitBytes of them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.asked: list[int] = []

    async def request(self, method: str, path: str, params: dict[str, str], **_: Any) -> dict[str, str]:
        tail, limit = int(params["tailLines"]), int(params["limitBytes"])
        self.asked.append(tail)
        window = "".join(line + "\n" for line in self.lines[-tail:])
        return {"text": window.encode()[:limit].decode("utf-8", "replace")}


def read(log: KubeletLog, tail: int, limit: int) -> str:
    return asyncio.run(KubeIO(log).pod_log("ns", "job-worker", "worker", tail, limit))  # type: ignore[arg-type]


def test_a_window_that_fits_is_read_once() -> None:
    log = KubeletLog([f"line {i}" for i in range(100)])
    assert read(log, 2000, 1 << 20).splitlines()[-1] == "line 99"
    assert log.asked == [2000]


def test_a_window_cut_by_the_byte_limit_is_asked_again_with_fewer_lines_and_ends_with_the_last_line() -> None:
    log = KubeletLog([f"{i:05d} " + "x" * 994 for i in range(3000)])  # 1,001 bytes a line
    text = read(log, 2000, 64 * 1024)
    assert log.asked == [2000, 500, 125, 31]
    assert text.splitlines()[-1].startswith("02999 ")
    assert len(text.encode()) < 64 * 1024


def test_one_line_longer_than_the_limit_is_returned_cut_rather_than_asked_forever() -> None:
    log = KubeletLog(["y" * 5000])
    assert read(log, 8, 1000) == "y" * 1000
    assert log.asked == [8, 2, 1]
