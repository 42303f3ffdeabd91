"""The watch-backed cache of jobs, indexed by the vendor lookup keys (no list call per request)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from kubernetes_asyncio import client

from datajobs.adapter.listwatch import ListWatch
from datajobs.models import GROUP, INTEGRITY_JOB, KINDS, MASKING_EXECUTION, VERSION, KindInfo

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)


def integrity_key(obj: dict[str, Any]) -> tuple[str, str] | None:
    """Prequel's lookup key: (status.destination_id, status.id); None until the operator has set both."""
    status = obj.get("status") or {}
    destination_id, job_id = status.get("destination_id"), status.get("id")
    if isinstance(destination_id, str) and isinstance(job_id, str) and destination_id and job_id:
        return (destination_id, job_id)
    return None


def masking_key(obj: dict[str, Any]) -> int | None:
    """Delphix's lookup key: status.executionId (an integer the operator assigns); None until then."""
    execution_id = (obj.get("status") or {}).get("executionId")
    if isinstance(execution_id, int) and not isinstance(execution_id, bool):
        return execution_id
    return None


KEY_FUNCTIONS: dict[str, Callable[[dict[str, Any]], Hashable | None]] = {
    INTEGRITY_JOB.plural: integrity_key,
    MASKING_EXECUTION.plural: masking_key,
}


def object_key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


class JobIndex:
    """The objects of one kind (from one or more watches), with an index from lookup key to object."""

    def __init__(self, key_fn: Callable[[dict[str, Any]], Hashable | None]) -> None:
        self._key_fn = key_fn
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._by_key: dict[Hashable, ObjectKey] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: Hashable) -> dict[str, Any] | None:
        """The object whose lookup key is `key`, or None (unknown, or not yet seen by the operator)."""
        ref = self._by_key.get(key)
        return None if ref is None else self._objects.get(ref)

    def replace(self, items: Sequence[dict[str, Any]], namespace: str | None = None) -> None:
        """Replace every object (of `namespace`, or all when None) with `items`, as after a list."""
        for ref in [r for r in self._objects if namespace is None or r[0] == namespace]:
            self._remove(ref)
        for obj in items:
            self._put(obj)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        ref = object_key(obj)
        self._remove(ref)
        if event_type != "DELETED":
            self._put(obj)

    def _put(self, obj: dict[str, Any]) -> None:
        ref = object_key(obj)
        self._objects[ref] = obj
        key = self._key_fn(obj)
        if key is not None:
            previous = self._by_key.get(key)
            if previous is not None and previous != ref:
                logger.warning(
                    "lookup key %r is on both %s/%s and %s/%s; using the latter", key, *previous, *ref
                )
            self._by_key[key] = ref

    def _remove(self, ref: ObjectKey) -> None:
        obj = self._objects.pop(ref, None)
        if obj is None:
            return
        key = self._key_fn(obj)
        if key is not None and self._by_key.get(key) == ref:
            del self._by_key[key]


class _NamespaceScopedHandler:
    """Adapts one namespace's watch to a shared JobIndex (a list replaces only that namespace)."""

    def __init__(self, index: JobIndex, namespace: str | None) -> None:
        self._index = index
        self._namespace = namespace

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._index.replace(items, self._namespace)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        self._index.apply(event_type, obj)


class JobCache:
    """One index per kind, kept current by one list+watch per kind (and per namespace when restricted)."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] = ()) -> None:
        self.indexes: dict[str, JobIndex] = {k.plural: JobIndex(KEY_FUNCTIONS[k.plural]) for k in KINDS}
        custom = client.CustomObjectsApi(api)
        self.watches: list[ListWatch] = []
        for kind in KINDS:
            scopes: Sequence[str | None] = list(namespaces) or [None]
            for ns in scopes:
                if ns is None:
                    call = functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, kind.plural)
                else:
                    call = functools.partial(
                        custom.list_namespaced_custom_object, GROUP, VERSION, ns, kind.plural
                    )
                name = kind.plural if ns is None else f"{kind.plural} in {ns}"
                handler = _NamespaceScopedHandler(self.indexes[kind.plural], ns)
                self.watches.append(ListWatch(name, call, handler))
        self._tasks: list[asyncio.Task[None]] = []

    def index(self, kind: KindInfo) -> JobIndex:
        return self.indexes[kind.plural]

    @property
    def synced(self) -> bool:
        return all(w.synced.is_set() for w in self.watches)

    def unsynced(self) -> list[str]:
        return [w.name for w in self.watches if not w.synced.is_set()]

    def start(self) -> None:
        self._tasks = [asyncio.create_task(w.run(), name=f"watch {w.name}") for w in self.watches]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(w.synced.wait() for w in self.watches))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
