"""The stock operator under tracemalloc: every 15 s the top allocation sites go to $BENCH_TRACEMALLOC_DIR."""

import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

OUT = Path(os.environ.get("BENCH_TRACEMALLOC_DIR", "bench/out"))


def dump_forever() -> None:
    while True:
        time.sleep(15)
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        by_file, by_site = snap.statistics("filename"), snap.statistics("traceback")
        lines = [f"{time.strftime('%T')}: traced {sum(s.size for s in by_file) / 2**20:.1f} MiB", ""]
        lines += [f"{s.size / 2**20:7.2f} MiB {s.count:8d}  {s.traceback[0].filename}" for s in by_file[:25]]
        for s in by_site[:25]:
            lines.append(f"{s.size / 2**20:7.2f} MiB {s.count:8d}")
            lines += [f"      {f.filename}:{f.lineno}" for f in s.traceback]
        (OUT / f"tracemalloc-{os.getpid()}.txt").write_text("\n".join(lines) + "\n")


tracemalloc.start(3)
threading.Thread(target=dump_forever, daemon=True).start()
from datajobs.cli import main  # noqa: E402

sys.exit(main())
