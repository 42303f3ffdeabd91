"""Monkeypatches that try the operator changes the profile suggests, without editing the operator."""

from __future__ import annotations

import types
from typing import Any

import kopf
from kubernetes_asyncio.client import rest


def no_trust_env() -> None:
    """kubernetes_asyncio's session without trust_env: no ~/.netrc read and proxy lookup per call."""
    original = rest.RESTClientObject.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.pool_manager._trust_env = False

    rest.RESTClientObject.__init__ = init  # type: ignore[method-assign]


class NoDiffBase(kopf.DiffBaseStorage):
    """The operator has only on.event handlers: kopf's per-event diff-base (a deep copy) is never used."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return kopf.BodyEssence()

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def no_diff_base() -> None:
    import datajobs.controller.handlers as handlers

    configure: Any = handlers.configure

    async def patched(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        await configure(settings=settings, memo=memo, **kwargs)
        settings.persistence.diffbase_storage = NoDiffBase()

    for handler in kopf.get_default_registry()._activities.get_all_handlers():
        if handler.fn is configure:
            object.__setattr__(handler, "fn", patched)


def shallow_copies() -> None:
    """Copy only the top level and metadata of each event body (the store pops metadata.managedFields)."""
    import datajobs.controller.handlers as handlers

    def copy_body(body: Any) -> dict[str, Any]:
        return {**body, "metadata": dict(body["metadata"])}

    setattr(handlers, "copy", types.SimpleNamespace(deepcopy=copy_body))  # noqa: B010 (a module attribute)
