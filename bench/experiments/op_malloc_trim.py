"""The operator with glibc's malloc_trim(0) called every 5 s from a thread (does RSS follow the heap?)."""

import ctypes
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `bench`

_trim = ctypes.CDLL(None).malloc_trim
_trim.argtypes = [ctypes.c_size_t]


def _trimmer() -> None:
    while True:
        time.sleep(5)  # an experiment's period, not a synchronisation
        _trim(0)


threading.Thread(target=_trimmer, name="malloc-trim", daemon=True).start()
from datajobs.cli import main  # noqa: E402

sys.exit(main())
