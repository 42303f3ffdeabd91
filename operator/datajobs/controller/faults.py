"""Crash injection for restart tests: DATAJOBS_CRASH_AT=<point>:<n> kills the process at the n-th hit.

Points: `before-create-pod` (pod not created; a MaskingExecution's status says RUNNING already),
`before-dispatch-write` (an IntegrityJob's pod created, its status not written), `before-stop-pod` (cancel
accepted, pod not deleted), `before-cancelled-write` (pod gone, CANCELLED not written). Unset in production.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
_point, _, _count = (os.environ.get("DATAJOBS_CRASH_AT") or "").partition(":")
_remaining = int(_count or 1)


def crash_point(name: str) -> None:
    global _remaining
    if name != _point:
        return
    _remaining -= 1
    if _remaining <= 0:
        log.error("DATAJOBS_CRASH_AT=%s reached: exiting without cleanup", name)
        logging.shutdown()
        os._exit(137)
