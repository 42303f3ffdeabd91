"""Progress on the pod's `datajobs.io/progress` annotation, at most one patch every 2 seconds."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from datajobs.workers.podapi import PodApi, PodApiError
from datajobs.workers.protocol import ANNOTATION_PROGRESS

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 2.0


class ProgressReporter:
    """`update(values)` is cheap and may be called per batch; a background thread sends the latest values.

    Without a pod API (a local run) updates are only logged at debug level."""

    def __init__(self, api: PodApi | None, interval: float = MIN_INTERVAL_SECONDS) -> None:
        self.api = api
        self.interval = max(interval, MIN_INTERVAL_SECONDS)
        self.patches = 0
        self._latest: dict[str, Any] | None = None
        self._sent: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if api is not None:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()

    def update(self, values: dict[str, Any]) -> None:
        if self.api is None:
            log.debug("progress: %s", values)
            return
        with self._lock:
            self._latest = dict(values)
        self._wake.set()

    def close(self, flush_timeout: float = 0.0) -> None:
        """Stop reporting; with flush_timeout > 0, first send the latest values if the rate limit allows."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None and flush_timeout > 0:
            self._thread.join(flush_timeout)

    def _run(self) -> None:
        last = float("-inf")
        while True:
            self._wake.wait()
            self._wake.clear()
            pause = last + self.interval - time.monotonic()
            if pause > 0 and self._closed.wait(pause):
                return  # closed while the rate limit holds: the final report says the rest
            with self._lock:
                values = self._latest
            if values is not None and values != self._sent:
                last = time.monotonic()
                try:
                    assert self.api is not None
                    self.api.annotate({ANNOTATION_PROGRESS: json.dumps(values, sort_keys=True)})
                    self._sent = values
                    self.patches += 1
                except PodApiError as exc:
                    log.warning("could not report progress: %s", exc)
            if self._closed.is_set():
                return
