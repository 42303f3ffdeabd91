"""The dispatch queue: which QUEUED jobs may start now, FIFO by submission, under per-kind/namespace caps."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

SortKey = tuple[str, str]  # (submit time, namespace/name): FIFO order of submission


class Slot(Enum):
    """What a job means for the queue."""

    QUEUED = "queued"
    RUNNING = "running"  # holds a slot (RUNNING, including while a cancel waits for the pod to go)
    NONE = "none"  # finished, or deleted


@dataclass
class DispatchQueue:
    """Grants slots to the oldest queued jobs. Pure bookkeeping; the caller feeds it observations."""

    limit: int
    namespace_limit: int | None = None
    _order: list[tuple[SortKey, str]] = field(default_factory=list)
    _queued: dict[str, tuple[SortKey, str]] = field(default_factory=dict)  # uid -> (key, namespace)
    _holding: dict[str, str] = field(default_factory=dict)  # uid -> namespace: running or granted
    _granted: set[str] = field(default_factory=set)
    _per_namespace: Counter[str] = field(default_factory=Counter)

    def observe(self, uid: str, namespace: str, slot: Slot, key: SortKey = ("", "")) -> None:
        if slot is Slot.QUEUED:
            if uid in self._holding:
                if uid not in self._granted:  # a stale event for a job already running: ignore
                    return
            elif uid not in self._queued or self._queued[uid][0] != key:
                self._unqueue(uid)  # a job whose submit time changed moves to its new place
                self._queued[uid] = (key, namespace)
                bisect.insort(self._order, (key, uid))
            return
        self._unqueue(uid)
        if slot is Slot.RUNNING:
            self._granted.discard(uid)
            self._hold(uid, namespace)
        else:
            self.release(uid)

    def grant(self) -> list[str]:
        """Reserve slots for the oldest queued jobs that fit; they count as running until released."""
        free = self.limit - len(self._holding)
        granted: list[str] = []
        if free <= 0:
            return granted
        kept: list[tuple[SortKey, str]] = []
        for index, (key, uid) in enumerate(self._order):
            if len(granted) == free:
                kept.extend(self._order[index:])
                break
            _, namespace = self._queued[uid]
            if self.namespace_limit is not None and self._per_namespace[namespace] >= self.namespace_limit:
                kept.append((key, uid))
                continue
            self._granted.add(uid)
            self._hold(uid, namespace)
            granted.append(uid)
        self._order = kept  # granted jobs leave the order, so a burst is not walked again on every event
        return granted

    def is_granted(self, uid: str) -> bool:
        return uid in self._granted

    def release(self, uid: str) -> None:
        """Give back a job's slot (it finished, was deleted, or its dispatch did not happen)."""
        if uid in self._granted:
            self._granted.discard(uid)
            if uid in self._queued:  # still waiting: back to its place in the order
                bisect.insort(self._order, (self._queued[uid][0], uid))
        namespace = self._holding.pop(uid, None)
        if namespace is not None:
            self._per_namespace[namespace] -= 1

    @property
    def running(self) -> int:
        return len(self._holding) - len(self._granted)

    @property
    def depth(self) -> int:
        return len(self._queued) - len(self._granted)

    def _hold(self, uid: str, namespace: str) -> None:
        if uid not in self._holding:
            self._holding[uid] = namespace
            self._per_namespace[namespace] += 1

    def _unqueue(self, uid: str) -> None:
        entry = self._queued.pop(uid, None)
        if entry is not None and uid not in self._granted:
            index = bisect.bisect_left(self._order, (entry[0], uid))
            if index < len(self._order) and self._order[index][1] == uid:
                del self._order[index]
