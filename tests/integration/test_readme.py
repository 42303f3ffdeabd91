"""The README's commands, run against the local control plane, print what the README says they print.

A fenced ```sh block right after a `<!-- doctest -->` line is run (bash, `set -euo pipefail`, from the repo
root); the ```text block that follows it, if any, is its expected output. In the expected output `...`
within a line stands for any text, a line that is only `...` for any number of lines, and runs of
spaces for any run of spaces (table columns). The blocks run in README order, in one environment: the
`KUBECONFIG`, `ADAPTER` and `KEY` that `make dev` would give (here: the test's cluster with the test's
namespace as the default, a running operator and adapter) and the pinned kubectl and helm, and
kubectl-datajobs, on PATH.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import REPO_ROOT, helm_exe
from operatorkit import OperatorProcess
from pluginkit import plugin_dir
from test_adapter_cli import AdapterProcess

from datajobs.adapter.keys import hash_key
from helpers import kubectl_exe

README = REPO_ROOT / "README.md"
MARK = "<!-- doctest -->"
SETUP_MARK = "<!-- doctest: the test provides these -->"
PROVIDED = {"KUBECONFIG", "ADAPTER", "KEY"}
HELM_NAMESPACE = "datajobs-system"


@dataclass(frozen=True)
class Example:
    line: int  # 1-based line of the ```sh fence
    script: str
    expected: str | None


def _fenced(lines: list[str], start: int, info: str) -> tuple[str, int] | None:
    """The body of the fenced block with this info string opening at or after `start` (blank lines only)."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != f"```{info}":
        return None
    end = lines.index("```", i + 1)
    return "\n".join(lines[i + 1 : end]), end + 1


def examples(text: str, mark: str = MARK) -> list[Example]:
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != mark:
            continue
        block = _fenced(lines, i + 1, "sh")
        assert block is not None, f"README line {i + 1}: {mark} is not followed by a ```sh block"
        script, after = block
        output = _fenced(lines, after, "text")
        found.append(Example(i + 2, script, output[0] if output else None))
    return found


def expected_pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = [
            r"[ \t]+".join(re.escape(w) for w in re.split(r"[ \t]+", p)) for p in line.strip().split("...")
        ]
        parts.append(r"[ \t]*" + ".*?".join(pieces) + r"[ \t]*\n")
    return re.compile("".join(parts), re.S)


def matches(expected: str, actual: str) -> bool:
    normalized = "".join(line.strip() + "\n" for line in actual.strip("\n").splitlines())
    return expected_pattern(expected).fullmatch(normalized) is not None


# --- the matcher itself (no cluster) ----------------------------------------------------------------------


def test_expected_output_matching() -> None:
    table = "NAME   STATUS    AGE\nij/a   RUNNING   3s\n"
    assert matches("NAME STATUS AGE\nij/a RUNNING ...", table)
    assert not matches("NAME STATUS AGE\nij/a QUEUED ...", table)
    assert matches("first\n...\nlast", "first\nsecond\nthird\nlast\n")
    assert matches("first\n...\nlast", "first\nlast")
    assert not matches("first\nlast", "first\nsecond\nlast")
    assert matches('{"id": "...", "status": "RUNNING"}', '{"id": "9f-1", "status": "RUNNING"}')
    assert not matches('{"id": "...", "status": "RUNNING"}', '{"id": "9f-1", "status": "FAILED"}')


def test_readme_marks_its_examples() -> None:
    found = examples(README.read_text())
    assert len(found) >= 8, "the README's user guide lost its tested examples"
    assert all(e.expected for e in found), [e.line for e in found if not e.expected]
    (setup,) = examples(README.read_text(), SETUP_MARK)
    assigned = set(re.findall(r"^(?:export )?([A-Z_]+)=", setup.script, re.M))
    assert assigned == PROVIDED, f"the README's setup block sets {assigned}; the doc test provides {PROVIDED}"


# --- running them -----------------------------------------------------------------------------------------


@pytest.fixture
def environment(cluster: Any, namespace: str, crds: list[str], tmp_path: Path) -> Iterator[dict[str, str]]:
    kubeconfig = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for context in kubeconfig["contexts"]:
        context["context"]["namespace"] = namespace
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    key = secrets.token_urlsafe(24)
    keys = tmp_path / "keys.yaml"
    keys.write_text(f'keys:\n- {{name: docs, sha256: "{hash_key(key)}", namespaces: ["*"]}}\n')
    operator = OperatorProcess(str(path), namespace, tmp_path / "operator.log").start()
    adapter = AdapterProcess(
        ["--kubeconfig", str(path), "--namespace", namespace, "--api-keys-file", str(keys)],
        tmp_path / "adapter.log",
    )
    tools = f"{Path(kubectl_exe()).parent}:{helm_exe().parent}:{plugin_dir()}"  # plugin_dir: kubectl datajobs
    env = {
        **os.environ,
        "KUBECONFIG": str(path),
        "ADAPTER": adapter.url,
        "KEY": key,
        "PATH": f"{tools}:{os.environ.get('PATH', '')}",
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    cleanup = (
        f"helm uninstall datajobs-operator -n {HELM_NAMESPACE} --wait --timeout 60s || true; "
        f"kubectl delete namespace {HELM_NAMESPACE} --ignore-not-found --wait=false"
    )
    subprocess.run(["bash", "-c", cleanup], env=env, capture_output=True, timeout=120, check=False)
    try:
        yield env
    finally:
        adapter.stop()
        operator.stop()
        subprocess.run(["bash", "-c", cleanup], env=env, capture_output=True, timeout=120, check=False)


def shell_script(example: Example, state: Path) -> str:
    """The block as one shell session would run it: variables set by earlier blocks are still set."""
    names = sorted(set(re.findall(r"^(?:export )?([A-Z_][A-Z0-9_]*)=", example.script, re.M)))
    keep = f"declare -p {' '.join(names)} >> {state}\n" if names else ""
    return f"set -euo pipefail\nsource {state}\n{example.script}\n{keep}"


@pytest.mark.timeout(900)  # the whole user guide, block by block (each block has its own 180 s limit)
def test_readme_commands_print_what_the_readme_shows(environment: dict[str, str], tmp_path: Path) -> None:
    assert shutil.which("curl"), "the README's HTTP examples need curl"
    state = tmp_path / "shell-variables.sh"
    state.write_text("")
    for example in examples(README.read_text()):
        proc = subprocess.run(
            ["bash", "-c", shell_script(example, state)],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        where = f"README.md line {example.line}:\n{example.script}\n"
        assert proc.returncode == 0, (
            f"{where}exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        assert example.expected is not None
        assert matches(example.expected, proc.stdout), (
            f"{where}--- expected:\n{example.expected}\n--- got:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
