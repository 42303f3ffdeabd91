"""SIGTERM handling: learn from the pod's `datajobs.io/cancel-mode` annotation whether to stop gracefully.

SIGTERM and SIGINT are blocked in every thread and taken by one watcher thread with sigwait, so a signal
is seen at once even while the main thread waits inside a database call. The watcher reads the pod
(graceful when the API cannot be reached or there is no annotation), then drives the stop through hooks
the worker registers: `interrupt` (cancel the running statement) and `hard_exit` (write the report from
what is known now and leave the process), each at its deadline."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from datajobs.workers.podapi import PodApi, PodApiError
from datajobs.workers.protocol import ANNOTATION_CANCEL_MODE

log = logging.getLogger(__name__)

GRACEFUL = "graceful"
IMMEDIATE = "immediate"
DEFAULT_GRACE_SECONDS = 30.0
IMMEDIATE_EXIT_SECONDS = 1.5
"""An immediate stop leaves the process by this many seconds after the signal, whatever it is doing."""


class Stopped(Exception):
    """Raised in the worker's main thread at a safe point once a stop has been requested."""


@dataclass(frozen=True)
class StopRequest:
    mode: str  # GRACEFUL | IMMEDIATE
    reason: str
    received: float  # time.monotonic() of the signal
    grace: float  # seconds the worker was given

    @property
    def exit_by(self) -> float:
        if self.mode == IMMEDIATE:
            return self.received + IMMEDIATE_EXIT_SECONDS
        return self.received + max(self.grace - 1.0, 1.0)

    @property
    def finish_batch_by(self) -> float:
        """A graceful stop lets the running unit of work finish until then, and rolls it back after."""
        if self.mode == IMMEDIATE:
            return self.received
        return self.received + max(self.grace / 2.0, 0.5)


def resolve_mode(api: PodApi | None, timeout: float = 1.0) -> tuple[str, str, float]:
    """(mode, reason, grace seconds) from the worker's own pod, per docs/worker-protocol.md."""
    if api is None:
        return GRACEFUL, "SIGTERM; no pod API configured, assuming graceful", DEFAULT_GRACE_SECONDS
    try:
        pod = api.get(timeout=timeout)
    except PodApiError as exc:
        return (
            GRACEFUL,
            f"SIGTERM; the API server could not be read ({exc}), assuming graceful",
            DEFAULT_GRACE_SECONDS,
        )
    return mode_from_pod(pod)


def mode_from_pod(pod: dict) -> tuple[str, str, float]:
    """(mode, reason, grace seconds) from the pod object (pure; see resolve_mode)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    mode = (meta.get("annotations") or {}).get(ANNOTATION_CANCEL_MODE, "")
    if mode == IMMEDIATE:
        return IMMEDIATE, "cancelled (immediate)", float(grace)
    if mode == GRACEFUL:
        return GRACEFUL, "cancelled (graceful)", float(grace)
    return GRACEFUL, "SIGTERM without a cancel annotation (not a cancel), stopping gracefully", float(grace)


class StopWatcher:
    """Owns SIGTERM/SIGINT for the process. Create it in the main thread before any other thread."""

    def __init__(self, api: PodApi | None) -> None:
        self.api = api
        self.request: StopRequest | None = None
        self._requested = threading.Event()
        self._interrupt: Callable[[], None] = lambda: None
        self._hard_exit: Callable[[StopRequest], None] | None = None
        self._done = threading.Event()
        self._signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, self._signals)
        self._thread = threading.Thread(target=self._run, name="stop-watcher", daemon=True)
        self._thread.start()

    def on_interrupt(self, hook: Callable[[], None]) -> None:
        """`hook()` cancels whatever the main thread is blocked in (e.g. psycopg's cancel_safe)."""
        self._interrupt = hook

    def on_hard_exit(self, hook: Callable[[StopRequest], None]) -> None:
        """`hook(request)` writes the report from the current state and ends the process (os._exit)."""
        self._hard_exit = hook

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def check(self) -> None:
        """Raise Stopped if a stop was requested (call between units of work)."""
        if self._requested.is_set():
            raise Stopped(self.request.reason if self.request else "stop requested")

    def past_batch_deadline(self) -> bool:
        return self.request is not None and time.monotonic() >= self.request.finish_batch_by

    def finished(self) -> None:
        """The worker is leaving normally: no more hard exit."""
        self._done.set()

    def _run(self) -> None:
        sig = signal.sigwait(self._signals)
        received = time.monotonic()
        mode, reason, grace = resolve_mode(self.api)
        if sig == signal.SIGINT and mode == GRACEFUL:
            reason = "SIGINT, stopping gracefully (a second SIGINT stops at once)"
        self.request = StopRequest(mode, reason, received, grace)
        log.warning("stop requested: %s (grace %.0f s)", reason, grace)
        self._requested.set()
        threading.Thread(target=self._escalate_on_second_signal, name="stop-second", daemon=True).start()
        self._drive()

    def _escalate_on_second_signal(self) -> None:
        signal.sigwait(self._signals)
        previous = self.request
        assert previous is not None
        log.warning("second signal: stopping at once")
        self.request = StopRequest(
            IMMEDIATE, previous.reason + "; then a second signal", time.monotonic(), previous.grace
        )

    def _drive(self) -> None:
        interrupted: StopRequest | None = None
        while not self._done.is_set():
            request = self.request
            assert request is not None
            now = time.monotonic()
            if interrupted is not request and now >= request.finish_batch_by:
                if request.mode == GRACEFUL:
                    log.warning("the current unit of work is still running at its deadline: cancelling it")
                self._safe(self._interrupt)
                interrupted = request
            if now >= request.exit_by:
                break
            self._done.wait(0.05)
        if self._done.is_set():
            return
        log.error("the worker did not stop in time: leaving now")
        if self._hard_exit is not None and self.request is not None:
            self._hard_exit(self.request)

    @staticmethod
    def _safe(hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:
            log.exception("stop hook failed")
