"""`kubectl datajobs`: a kubectl plugin for IntegrityJobs and MaskingExecutions (not used by the operator)."""

from __future__ import annotations

import sys


def main() -> int:
    """The console script: says how to install the client library when it is missing."""
    try:
        import kubernetes  # noqa: F401
    except ModuleNotFoundError:
        sys.stderr.write(
            "error: kubectl datajobs needs the kubernetes client library: "
            "pip install 'datajobs-operator[kubectl]'\n"
        )
        return 1
    from datajobs.kubectlplugin.main import main as run

    return run()
