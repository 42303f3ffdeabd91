"""Run `kubectl datajobs ...` as a user types it: the pinned kubectl, finding the plugin on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import kubectl_exe

PLUGIN = "kubectl-datajobs"


def plugin_dir() -> Path:
    """The directory of the installed console script (the venv's bin, next to the interpreter)."""
    here = Path(sys.executable).parent
    if not (here / PLUGIN).is_file():
        found = shutil.which(PLUGIN)
        if found is None:
            pytest.fail(f"{PLUGIN} is not installed next to {sys.executable} nor on PATH: run `make venv`")
        return Path(found).parent
    return here


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Plugin:
    """`plugin("get", "-o", "json")` runs `kubectl datajobs get -o json` with the test's kubeconfig, whose
    context's namespace is the test's namespace (so no -n is needed, as in a user's shell)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PATH": f"{plugin_dir()}:{Path(kubectl_exe()).parent}:{os.environ.get('PATH', '')}",
        }

    def __call__(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [kubectl_exe(), "datajobs", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, timeout: float = 120) -> Result:
        result = self(*args, timeout=timeout)
        assert result.code == 0, f"kubectl datajobs {' '.join(args)} exited {result.code}: {result.err}"
        return result


def kubeconfig_in_namespace(source: str, namespace: str, target: Path) -> Path:
    doc = yaml.safe_load(Path(source).read_text())
    for context in doc["contexts"]:
        context["context"]["namespace"] = namespace
    target.write_text(yaml.safe_dump(doc))
    return target


def table(text: str) -> list[dict[str, str]]:
    """A kubectl table as dicts (columns split on runs of 2+ spaces; the last column may hold spaces)."""
    import re

    lines = [line for line in text.splitlines() if line.strip()]
    headers = re.split(r"\s{2,}", lines[0].strip())
    return [
        dict(zip(headers, re.split(r"\s{2,}", line.strip(), maxsplit=len(headers) - 1), strict=False))
        for line in lines[1:]
    ]
