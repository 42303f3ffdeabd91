"""Test helpers: poll a predicate with a deadline (sync and async) instead of sleeping; the pinned kubectl."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from datajobs.localcluster import BinariesError, ensure_binaries

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.1


def wait_for(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns something truthy and return that value.

    Exceptions listed in `ignore` count as "not yet" (e.g. a 404 while an object is being created). On
    timeout, raises AssertionError naming `message` and the last value (or exception) seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}; last value: {last!r}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (same signature as wait_for)
    interval: float = DEFAULT_INTERVAL,
    message: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """The async twin of `wait_for`: `predicate` may be a plain or an async function."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value  # type: ignore[return-value]
            last = value
        except ignore as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}; last value: {last!r}")
        await asyncio.sleep(interval)


def pinned_tool(name: str) -> Path:
    """A tool built with the control plane (kubectl, helm), built when absent; fails loudly if it cannot."""
    try:
        return ensure_binaries([name])[name]
    except BinariesError as exc:
        pytest.fail(f"{name} is unavailable: {exc}", pytrace=False)


def kubectl_exe() -> str:
    """The pinned kubectl (the system's may be outside kubectl's one-minor skew policy)."""
    return str(pinned_tool("kubectl"))
