"""The pod informer resumes a watch where it was, lists again on 410, and backs off from a broken watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from datajobs.controller.apisession import ApiError
from datajobs.controller.podwatch import PodInformer
from datajobs.core.backoff import Backoff


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": str(rv)}}


class Done(BaseException):
    """Ends the test's informer once the scripted watches are used up (not an Exception: the informer
    survives every Exception, as it must)."""


class ScriptedWatches:
    """Each watch_pods call plays the next script: a list of events, or an exception raised after them."""

    def __init__(self, scripts: list[list[Any]]) -> None:
        self.scripts = scripts
        self.asked: list[str] = []  # the resourceVersion each watch was opened from

    async def watch_pods(
        self, namespace: str | None, selector: str, rv: str
    ) -> AsyncIterator[dict[str, Any]]:
        self.asked.append(rv)
        if not self.scripts:
            raise Done()
        for step in self.scripts.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step


def informer(io: ScriptedWatches, listed_rv: str = "500") -> tuple[PodInformer, list, list]:
    seen: list[tuple[str, str]] = []
    lists: list[str | None] = []

    async def relist(namespace: str | None) -> str:
        lists.append(namespace)
        return listed_rv

    def on_event(kind: str, body: dict[str, Any]) -> None:
        seen.append((kind, body["metadata"]["name"]))

    return PodInformer(io, "ns", "sel", relist, on_event, Backoff(base=0.0, cap=0.0)), seen, lists


def run(inf: PodInformer, rv: str) -> None:
    with pytest.raises(Done):
        asyncio.run(inf.run(rv))


def test_a_watch_the_server_ends_is_opened_again_from_the_last_event_and_bookmarks_move_it_on():
    io = ScriptedWatches(
        [
            [{"type": "ADDED", "object": pod("a", 11)}, {"type": "MODIFIED", "object": pod("a", 12)}],
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}}],
            [{"type": "DELETED", "object": pod("a", 21)}],
        ]
    )
    inf, seen, lists = informer(io)
    run(inf, "10")
    assert io.asked == ["10", "12", "20", "21"]
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]  # a bookmark is no pod event
    assert lists == []


def test_an_expired_revision_lists_the_pods_again_and_watches_from_the_list():
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    io = ScriptedWatches([[{"type": "ADDED", "object": pod("a", 11)}, gone], []])
    inf, seen, lists = informer(io, listed_rv="900")
    run(inf, "10")
    assert lists == ["ns"]
    assert io.asked == ["10", "900", "900"]
    assert seen == [("ADDED", "a")]


def test_a_broken_watch_or_a_server_error_resumes_from_the_last_revision_after_a_backoff():
    io = ScriptedWatches(
        [
            [{"type": "ADDED", "object": pod("a", 11)}, aiohttp.ClientPayloadError("cut")],
            [ApiError(503, "Service Unavailable")],
            [ValueError("Expecting value")],  # unexpected: logged with its traceback, and survived
            [{"type": "MODIFIED", "object": {"metadata": {"name": "a"}}}],  # no revision: a bug, not ours
            [{"type": "ADDED", "object": pod("b", 14)}],
        ]
    )
    inf, seen, lists = informer(io)
    run(inf, "10")
    # an event without a revision leaves nothing to resume from: the pods are listed again
    assert io.asked == ["10", "11", "11", "11", "500", "14"] and lists == ["ns"]
    assert seen == [("ADDED", "a"), ("ADDED", "b")]


def test_a_watch_that_ends_at_once_with_nothing_backs_off_instead_of_spinning():
    io = ScriptedWatches([[], [], [{"type": "ADDED", "object": pod("a", 11)}]])
    inf, seen, lists = informer(io)
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    inf.backoff, inf.sleep = Backoff(base=1.0, cap=8.0, jitter=0.0), sleep
    run(inf, "10")
    assert slept == [1.0, 2.0]  # after each empty watch, doubling; the third delivered an event
    assert io.asked == ["10", "10", "10", "11"] and seen == [("ADDED", "a")]
    assert lists == []  # an empty watch is no reason to list
