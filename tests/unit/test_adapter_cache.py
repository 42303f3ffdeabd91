"""The job cache: indexing by vendor key, and the list+watch loop (relist on 410, re-watch on errors)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from datajobs.adapter.cache import JobIndex, integrity_key, masking_key
from datajobs.adapter.listwatch import ListWatch


def mex(name: str, execution_id: int | None, ns: str = "ns", rv: str = "1") -> dict[str, Any]:
    status = {} if execution_id is None else {"executionId": execution_id, "jobId": 1}
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": rv},
        "status": status,
    }


def test_key_functions() -> None:
    assert masking_key(mex("a", 5)) == 5
    assert masking_key(mex("a", None)) is None
    assert masking_key({"status": {"executionId": True}}) is None
    assert masking_key({"status": {"executionId": "5"}}) is None
    assert integrity_key({"status": {"destination_id": "d", "id": "u"}}) == ("d", "u")
    assert integrity_key({"status": {"destination_id": "d"}}) is None
    assert integrity_key({}) is None


def test_index_follows_events() -> None:
    index = JobIndex(masking_key)
    index.replace([mex("a", 1), mex("b", None)])
    assert index.get(1)["metadata"]["name"] == "a"  # type: ignore[index]
    assert len(index) == 2
    index.apply("MODIFIED", mex("b", 2))  # the operator assigned b's executionId
    assert index.get(2)["metadata"]["name"] == "b"  # type: ignore[index]
    index.apply("MODIFIED", mex("a", 1, rv="9"))
    assert index.get(1)["metadata"]["resourceVersion"] == "9"  # type: ignore[index]
    index.apply("DELETED", mex("a", 1))
    assert index.get(1) is None and len(index) == 1
    # a namespace-scoped relist replaces only that namespace
    index.replace([mex("c", 3, ns="other")], namespace="other")
    index.replace([], namespace="ns")
    assert index.get(2) is None and index.get(3) is not None


def test_index_key_collision_does_not_drop_the_survivor() -> None:
    index = JobIndex(masking_key)
    index.replace([mex("a", 1)])
    index.apply("ADDED", mex("b", 1))
    index.apply("DELETED", mex("a", 1))  # a's removal must not remove b's entry
    assert index.get(1)["metadata"]["name"] == "b"  # type: ignore[index]


class FakeStream:
    def __init__(self, lines: list[bytes]) -> None:
        self._lines = list(lines)

    async def readline(self) -> bytes:
        return self._lines.pop(0) if self._lines else b""


class FakeResponse:
    def __init__(self, status: int, body: Any = None, lines: list[bytes] | None = None) -> None:
        self.status = status
        self._body = json.dumps(body).encode()
        self.content = FakeStream(lines or [])

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class ScriptedApi:
    """A list function that answers from a script, then blocks (like an idle watch)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> FakeResponse:
        self.calls.append(kwargs)
        if not self.script:
            await asyncio.Event().wait()
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step  # type: ignore[no-any-return]


def event(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def listing(items: list[dict[str, Any]], rv: str, cont: str | None = None) -> FakeResponse:
    return FakeResponse(200, {"items": items, "metadata": {"resourceVersion": rv, "continue": cont}})


def test_list_watch_relists_on_gone_and_rewatches_after_errors() -> None:
    index = JobIndex(masking_key)
    api = ScriptedApi(
        [
            listing([mex("a", 1)], "10", cont="page2"),
            listing([mex("b", 2)], "10"),
            FakeResponse(
                200,
                lines=[
                    event("MODIFIED", mex("a", 11, rv="11")),
                    b"\n",
                    event("DELETED", mex("b", 2, rv="12")),
                    event("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
                ],
            ),  # then the server ends the watch: watch again from 15
            ConnectionResetError("reset"),  # a broken connection: watch again from 15, no relist
            FakeResponse(200, lines=[event("ERROR", {"code": 410, "message": "too old"})]),
            listing([mex("c", 3)], "20"),
            FakeResponse(410, {"code": 410}),  # 410 as an HTTP status also means relist
            listing([mex("c", 3), mex("d", 4)], "30"),
        ]
    )
    watch = ListWatch("mex", api, index, backoff_initial=0.001)

    async def scenario() -> None:
        task = asyncio.create_task(watch.run())
        try:
            deadline = time.monotonic() + 5
            while api.script or len(api.calls) < 9:
                assert time.monotonic() < deadline, api.calls
                await asyncio.sleep(0.001)
            await watch.synced.wait()
        finally:
            task.cancel()

    asyncio.run(scenario())
    watches = [c for c in api.calls if c.get("watch")]
    assert [c["resource_version"] for c in watches] == ["10", "15", "15", "20", "30"]
    assert all(c["allow_watch_bookmarks"] for c in watches)
    assert api.calls[1]["_continue"] == "page2"
    assert watch.lists == 3 and watch.errors == 1
    assert index.get(1) is None and index.get(2) is None and index.get(11) is None
    assert index.get(3) is not None and index.get(4) is not None


def test_list_errors_are_retried_and_sync_waits_for_a_list() -> None:
    index = JobIndex(masking_key)
    api = ScriptedApi([FakeResponse(403, {"message": "forbidden"}), listing([mex("a", 1)], "5")])
    watch = ListWatch("mex", api, index, backoff_initial=0.001)

    async def scenario() -> None:
        task = asyncio.create_task(watch.run())
        try:
            await asyncio.wait_for(watch.synced.wait(), 5)
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert watch.errors == 1 and index.get(1) is not None
