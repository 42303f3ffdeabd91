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


def test_the_operator_process_loads_no_client_library():
    """kopf would import kubernetes and kubernetes_asyncio (~45 MB); `datajobs run` keeps them out."""
    code = (
        "import sys\n"
        "from datajobs.cli import build_parser, keep_out_unused_imports\n"
        "keep_out_unused_imports('run')\n"
        "build_parser(['run'])\n"
        "import datajobs.controller.handlers\n"
        "loaded = sorted(m for m, v in sys.modules.items()\n"
        "                if v is not None and m.split('.')[0] in ('kubernetes', 'kubernetes_asyncio'))\n"
        "assert 'kopf' in sys.modules and not loaded, loaded\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_building_the_parser_leaves_the_callers_imports_alone():
    """Only `main()` keeps client libraries out; building the parser in-process leaves imports alone."""
    code = "from datajobs.cli import build_parser\nbuild_parser(['run'])\nimport kubernetes_asyncio.client\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
