"""The reconcile work queue: de-duplication, one worker per key, and the background lane."""

from __future__ import annotations

import asyncio

from datajobs.controller.workqueue import WorkQueue


async def handed_out(queue: WorkQueue) -> list[str]:
    """Every key get() hands out right now, in order (each marked done at once)."""
    order: list[str] = []
    while len(queue):
        key = await asyncio.wait_for(queue.get(), 1)
        order.append(str(key))
        queue.done(key)
    return order


def drain(queue: WorkQueue) -> list[str]:
    return asyncio.run(handed_out(queue))


def test_a_key_queued_twice_is_handed_out_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert drain(queue) == ["a", "b"]


def test_urgent_keys_go_before_background_ones_in_fifo_order_within_a_lane() -> None:
    queue = WorkQueue()
    for key in ("r1", "r2", "r3"):
        queue.add(key, background=True)
    queue.add("e1")
    queue.add("e2")
    assert queue.backlog() == (2, 3)
    assert drain(queue) == ["e1", "e2", "r1", "r2", "r3"]


def test_an_urgent_add_moves_a_background_key_forward_and_it_runs_once() -> None:
    queue = WorkQueue()
    for key in ("r1", "r2", "r3"):
        queue.add(key, background=True)
    queue.add("r3")  # an event for a job the relist had queued
    assert queue.backlog() == (1, 2)
    assert drain(queue) == ["r3", "r1", "r2"]


def test_a_background_add_never_demotes_an_urgent_key() -> None:
    queue = WorkQueue()
    queue.add("r1", background=True)
    queue.add("e1")
    queue.add("e1", background=True)
    assert drain(queue) == ["e1", "r1"]


def test_a_key_added_while_processing_comes_back_after_done_in_the_most_urgent_lane_asked() -> None:
    async def run() -> list[str]:
        queue = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a", background=True)
        queue.add("a")  # a watch event while a relist had also asked for it
        queue.add("b", background=True)
        assert len(queue) == 1  # "a" is not queued twice while a worker holds it
        queue.done(key)
        return await handed_out(queue)

    assert asyncio.run(run()) == ["a", "b"]


def test_a_key_requeued_after_a_promotion_is_not_handed_out_twice() -> None:
    async def run() -> tuple[list[str], int]:
        queue = WorkQueue()
        queue.add("a", background=True)
        queue.add("a")  # promoted: a stale background entry stays behind
        key = await queue.get()
        queue.done(key)
        queue.add("a", background=True)
        queue.add("b", background=True)
        return await handed_out(queue), len(queue)

    order, left = asyncio.run(run())
    assert order == ["a", "b"]
    assert left == 0


def test_waiting_workers_wake_for_a_new_key() -> None:
    async def run() -> str:
        queue = WorkQueue()
        waiter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)  # one loop turn: the waiter is now blocked in get(), not a timing wait
        assert not waiter.done()
        queue.add("late", background=True)
        return str(await asyncio.wait_for(waiter, 1))

    assert asyncio.run(run()) == "late"
