"""The operator with a full relist every 20 s (default 300 s), so that one falls into every cancel phase;
with DATAJOBS_ONE_LANE=1 its work queue has a single lane again (every relisted job queued like an event).
The A/B of the background lane: `python -m bench.run --n 5000 --skip adapter --skip scale
--operator-wrapper bench/experiments/op_resync_often.py`, once with DATAJOBS_ONE_LANE=1 and once without."""

import dataclasses
import os
import sys

from datajobs.controller import engine, workqueue

_init = engine.Engine.__init__


def _often(self: engine.Engine, io: object, config: object) -> None:
    _init(self, io, dataclasses.replace(config, resync_seconds=20.0))  # type: ignore[arg-type, type-var]


engine.Engine.__init__ = _often  # type: ignore[method-assign]
if os.environ.get("DATAJOBS_ONE_LANE") == "1":
    _add = workqueue.WorkQueue.add
    workqueue.WorkQueue.add = lambda self, key, background=False: _add(self, key)  # type: ignore[method-assign]
from datajobs.cli import main  # noqa: E402

sys.exit(main())
