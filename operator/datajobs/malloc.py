"""glibc malloc settings for the long-running processes (operator, adapter): memory that stays flat."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2


def settle() -> bool:
    """Fix glibc's mmap threshold and cap its arenas; False where the C library is not glibc.

    Every TLS connection asyncio opens holds a 256 KiB read buffer. With glibc's default, freeing one such
    mmap'd block raises the mmap threshold to its size, so later buffers come from the heap, whose free
    holes are rarely given back: RSS creeps as connections come and go. A fixed threshold keeps large
    blocks mmap'd (returned to the system when freed). Arenas: each thread that allocates (aiohttp's DNS
    and kopf's executors) may get its own, up to 8 per core, each a step of RSS; two are plenty here."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    log.debug("malloc: mmap threshold %d bytes, at most %d arenas: %s", MMAP_THRESHOLD_BYTES, ARENA_MAX, ok)
    return ok
