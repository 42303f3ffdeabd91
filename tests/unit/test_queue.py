"""The dispatch queue: FIFO grants under per-kind and per-namespace limits."""

from __future__ import annotations

import random

from datajobs.core.queue import DispatchQueue, Slot


def key(i: int) -> tuple[str, str]:
    return (f"2026-01-01T00:00:{i:02d}Z", f"ns/job-{i:03d}")


def test_grants_oldest_first_up_to_the_limit():
    q = DispatchQueue(limit=3)
    for i in random.Random(1).sample(range(10), 10):
        q.observe(f"u{i}", "ns", Slot.QUEUED, key(i))
    assert q.grant() == ["u0", "u1", "u2"]
    assert q.grant() == []  # the three granted hold their slots until observed or released
    q.observe("u0", "ns", Slot.RUNNING)
    q.observe("u1", "ns", Slot.RUNNING)
    assert q.running == 2 and q.depth == 7
    q.observe("u0", "ns", Slot.NONE)  # finished: frees its slot at once
    assert q.grant() == ["u3"]


def test_release_of_a_failed_dispatch_gives_the_slot_back_and_keeps_the_job_queued():
    q = DispatchQueue(limit=1)
    q.observe("a", "ns", Slot.QUEUED, key(1))
    q.observe("b", "ns", Slot.QUEUED, key(2))
    assert q.grant() == ["a"]
    q.release("a")
    assert q.grant() == ["a"]


def test_cancelled_queued_job_leaves_the_queue():
    q = DispatchQueue(limit=1)
    q.observe("a", "ns", Slot.QUEUED, key(1))
    q.observe("b", "ns", Slot.QUEUED, key(2))
    q.observe("a", "ns", Slot.NONE)
    assert q.grant() == ["b"]


def test_stale_queued_event_of_a_running_job_is_ignored():
    q = DispatchQueue(limit=2)
    q.observe("a", "ns", Slot.QUEUED, key(1))
    assert q.grant() == ["a"]
    q.observe("a", "ns", Slot.RUNNING)
    q.observe("a", "ns", Slot.QUEUED, key(1))
    assert q.running == 1 and q.depth == 0


def test_namespace_limit_skips_full_namespaces_but_keeps_fifo_within_each():
    q = DispatchQueue(limit=10, namespace_limit=1)
    q.observe("a1", "a", Slot.QUEUED, key(1))
    q.observe("a2", "a", Slot.QUEUED, key(2))
    q.observe("b1", "b", Slot.QUEUED, key(3))
    assert q.grant() == ["a1", "b1"]
    q.observe("a1", "a", Slot.NONE)
    assert q.grant() == ["a2"]


def test_limit_holds_under_random_interleavings():
    rng = random.Random(7)
    q = DispatchQueue(limit=5)
    holding: set[str] = set()
    for step in range(2000):
        uid = f"u{rng.randrange(50)}"
        action = rng.random()
        if action < 0.4:
            q.observe(uid, "ns", Slot.QUEUED, key(rng.randrange(60)))
        elif action < 0.6:
            for g in q.grant():
                holding.add(g)
        elif action < 0.8 and uid in holding:
            q.observe(uid, "ns", Slot.RUNNING)
        elif uid in holding:
            q.observe(uid, "ns", Slot.NONE)
            holding.discard(uid)
        assert len(q._holding) <= 5, step


def test_a_job_whose_submit_time_changes_moves_to_its_new_place():
    q = DispatchQueue(limit=1)
    q.observe("a", "ns", Slot.QUEUED, key(5))
    q.observe("b", "ns", Slot.QUEUED, key(3))
    q.observe("a", "ns", Slot.QUEUED, key(1))  # its recorded submit time is older than the stamp it had
    assert q.grant() == ["a"] and q.depth == 1
    q.observe("a", "ns", Slot.NONE)
    assert q.grant() == ["b"] and q.depth == 0
