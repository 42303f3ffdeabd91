"""The console script imports only the subcommand it runs (a worker pod must not load kopf)."""

from __future__ import annotations

import subprocess
import sys


def test_worker_subcommand_does_not_import_the_operator_or_adapter():
    code = (
        "import sys; from datajobs.cli import build_parser; build_parser(['worker', 'masking']); "
        "print(sorted(m for m in ('kopf', 'datajobs.adapter', 'datajobs.controller') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unbuilt_or_unknown_commands_fail_loudly():
    result = subprocess.run([sys.executable, "-m", "datajobs.cli", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
