"""The compare-and-set: a status change between the adapter's read and its patch is never slipped through."""

# ruff: noqa: F811 (pytest fixtures imported from test_adapter_contract are redefined as parameters)

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from kubernetes import client, watch
from test_adapter_contract import (  # noqa: F401 (fixtures)
    ADMIN_KEY,
    GROUP,
    MEX,
    VERSION,
    Player,
    adapter,
    delphix,
    http,
    masking_status,
    player,
    start_adapter,
    wait_visible,
)

from datajobs.adapter.server import ThreadedAdapter
from helpers import wait_for


def once(action: Callable[[dict[str, Any]], None]) -> tuple[Callable[[dict[str, Any]], Any], list[str]]:
    """An after_read hook that runs `action` (a blocking status write) the first time only."""
    calls: list[str] = []

    async def hook(obj: dict[str, Any]) -> None:
        calls.append(obj["metadata"]["resourceVersion"])
        if len(calls) == 1:
            await asyncio.to_thread(action, obj)

    return hook, calls


def metric(adapter: ThreadedAdapter, line_prefix: str) -> float:
    text = adapter.adapter.metrics.render().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_prefix)]
    return sum(values)


def test_dispatch_between_read_and_patch_turns_a_queued_guard_into_a_400(
    start_adapter: Any, player: Player
) -> None:
    player.masking("mex-q", 1101, status="QUEUED")
    hook, reads = once(
        lambda _: player.write_status(
            MEX, "mex-q", {"status": "RUNNING", "startTime": "2026-01-01T00:00:01Z"}
        )
    )
    adapter = start_adapter(after_read=hook)
    url = adapter.url + "/executions/1101"
    wait_visible(url, delphix())

    status, body = http("POST", url + "/cancel?expectedStatus=QUEUED", delphix())

    # the patch carried the resourceVersion read before the dispatch: 409, re-read, now RUNNING -> 400
    assert status == 400, body
    assert body["errorMessage"] == (
        "execution 1101 was not cancelled: expected status QUEUED but the actual status is RUNNING"
    )
    assert len(reads) == 1  # the second decision rejected before any patch
    obj = player.get(MEX, "mex-q")
    assert obj["status"]["status"] == "RUNNING" and "cancelRequested" not in obj["spec"]
    assert metric(adapter, 'datajobs_adapter_patch_conflicts_total{kind="MaskingExecution"}') == 1


def test_finish_between_read_and_patch_is_a_400(start_adapter: Any, player: Player) -> None:
    player.masking("mex-r", 1102)
    hook, _ = once(
        lambda _: player.write_status(
            MEX, "mex-r", {"status": "SUCCEEDED", "endTime": "2026-01-01T00:00:09Z"}
        )
    )
    adapter = start_adapter(after_read=hook)
    url = adapter.url + "/executions/1102"
    wait_visible(url, delphix())

    status, body = http("POST", url + "/cancel", delphix())

    assert status == 400 and "already SUCCEEDED" in body["errorMessage"], body
    assert "cancelRequested" not in player.get(MEX, "mex-r")["spec"]


def test_unrelated_status_change_is_retried_and_the_cancel_lands(start_adapter: Any, player: Player) -> None:
    player.masking("mex-p", 1103)
    hook, reads = once(lambda _: player.write_status(MEX, "mex-p", {"rowsMasked": 500}))
    adapter = start_adapter(after_read=hook)
    url = adapter.url + "/executions/1103"
    wait_visible(url, delphix())

    status, body = http("POST", url + "/cancel?expectedStatus=RUNNING", delphix())

    assert status == 200, body
    assert body["rowsMasked"] == 500  # the answer is the object as patched, i.e. as re-read
    assert len(reads) == 2 and reads[0] != reads[1]
    obj = player.get(MEX, "mex-p")
    assert obj["spec"]["cancelRequested"]["expectedStatus"] == "RUNNING"
    assert metric(adapter, 'datajobs_adapter_patch_conflicts_total{kind="MaskingExecution"}') == 1


class EventLog:
    """Every MaskingExecution event in a namespace from a resourceVersion on (a watch in a thread)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, MEX)
        self.events: list[dict[str, Any]] = []
        self._watch = watch.Watch()
        self._rv = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.ns,
                MEX,
                resource_version=self._rv,
                timeout_seconds=120,
            ):
                self.events.append(event["raw_object"])
        except Exception:
            if not self._stopped:
                raise

    _stopped = False

    def caught_up(self, versions: dict[str, str]) -> bool:
        last = {e["metadata"]["name"]: e["metadata"]["resourceVersion"] for e in self.events}
        return all(last.get(name) == rv for name, rv in versions.items())

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def test_100_simultaneous_cancels_while_jobs_are_dispatched(
    start_adapter: Any, player: Player, kube_api: client.ApiClient
) -> None:
    """100 cancels with mixed expectedStatus race the QUEUED->RUNNING writes of 10 jobs.

    Every patch that reached the API server must have held its guard at that moment: the watch shows
    each change of spec.cancelRequested together with the status it was written against.
    """
    names = [f"mex-{i}" for i in range(10)]
    for i, name in enumerate(names):
        player.masking(name, 1200 + i, status="QUEUED")
    adapter = start_adapter()
    for i in range(10):
        wait_visible(f"{adapter.url}/executions/{1200 + i}", delphix())
    log = EventLog(kube_api, player.ns)
    expectations = [(None, "QUEUED", "RUNNING")[i % 3] for i in range(100)]
    start = threading.Barrier(11)
    answers: list[tuple[int, int, str | None, Any]] = []

    def flip(k: int) -> None:
        # job k is dispatched once about 9*k answers are out: the flips spread over the whole burst
        start.wait()
        wait_for(lambda: len(answers) >= 9 * k, timeout=60, interval=0.001, message="the burst stalled")
        player.write_status(MEX, names[k], {"status": "RUNNING", "startTime": "2026-01-01T00:00:01Z"})

    async def fire() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> None:
                execution_id, expected = 1200 + i % 10, expectations[i]
                query = {"graceful": "true" if i % 2 else "false"}
                if expected:
                    query["expectedStatus"] = expected
                async with session.post(
                    f"{adapter.url}/executions/{execution_id}/cancel",
                    params=query,
                    headers={"Authorization": ADMIN_KEY},
                ) as resp:
                    answers.append((i, resp.status, expected, await resp.json()))

            await asyncio.to_thread(start.wait)
            await asyncio.gather(*(one(i) for i in range(100)))

    flippers = [threading.Thread(target=flip, args=(k,)) for k in range(10)]
    for t in flippers:
        t.start()
    asyncio.run(fire())
    for t in flippers:
        t.join(30)

    final = {name: player.get(MEX, name) for name in names}
    wait_for(
        lambda: log.caught_up({n: o["metadata"]["resourceVersion"] for n, o in final.items()}),
        timeout=30,
        message="the watch did not see every change",
    )
    log.stop()

    assert len(answers) == 100
    codes = sorted({status for _, status, _, _ in answers})
    # a race that never raced proves nothing: some cancels held their guard and some were refused
    assert codes == [200, 400], codes
    for i, status, expected, body in answers:
        if status == 200:
            # the status the guard was checked against (as read for the patch or the in-progress answer)
            assert expected is None or body["status"] == expected, (i, expected, body)
        else:
            assert "expected status" in body["errorMessage"], body
            assert (
                f"actual status is {'RUNNING' if expected == 'QUEUED' else 'QUEUED'}" in body["errorMessage"]
            )

    # every patch in the history held its guard against the status it was written over
    patches = 0
    previous: dict[str, str | None] = dict.fromkeys(names)
    for event in log.events:
        name = event["metadata"]["name"]
        requested = event["spec"].get("cancelRequested")
        stamp = requested and requested["requestedAt"]
        if stamp and stamp != previous[name]:
            patches += 1
            expected = requested.get("expectedStatus")
            assert expected in (None, event["status"]["status"]), event
        previous[name] = stamp
    assert patches == metric(
        adapter, 'datajobs_adapter_cancels_total{kind="MaskingExecution",outcome="patched"}'
    )
    assert patches >= 10  # every job got at least one cancel through (no-guard requests always hold)
    assert all(obj["status"]["status"] == "RUNNING" for obj in final.values())
    # the flips really happened mid-burst: answers were given against both statuses
    statuses_seen = {body["status"] for _, status, _, body in answers if status == 200}
    assert statuses_seen == {"QUEUED", "RUNNING"}, statuses_seen
    ok = sum(1 for _, s, _, _ in answers if s == 200)
    conflicts = metric(adapter, 'datajobs_adapter_patch_conflicts_total{kind="MaskingExecution"}')
    seen = Counter(
        (expected, status, body.get("status") or body["errorMessage"].rsplit(" ", 1)[-1])
        for _, status, expected, body in answers
    )
    logging.getLogger(__name__).info(
        f"100 cancels: {ok} x 200, {100 - ok} x 400, {patches} patches, {conflicts:.0f} conflicts retried; "
        f"(expectedStatus, code, status seen): {sorted(seen.items(), key=str)}"
    )
