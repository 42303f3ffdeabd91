"""The operator's malloc settings take effect on glibc (this machine's C library)."""

from __future__ import annotations

import subprocess
import sys


def test_settle_sets_the_threshold_and_the_arena_cap_on_glibc() -> None:
    code = "from datajobs import malloc; import sys; sys.exit(0 if malloc.settle() else 1)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
