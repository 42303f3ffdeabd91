"""`make verify` passes on a clean tree and fails when generated files and models disagree (in a copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IJ_CRD = Path("crds/integrityjobs.datajobs.io.yaml")
CHART_CRD = Path("charts/datajobs-operator/crds/maskingexecutions.datajobs.io.yaml")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of this checkout's files (tracked and new, not ignored) committed as a fresh repository."""
    copy = tmp_path / "repo"
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "clean tree")
    return copy


def make_verify(tree: Path) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.prefix)
    stamp_sum = subprocess.run(
        "cat pyproject.toml operator/datajobs/workers/_fastmask.c | cksum",
        shell=True,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[0]
    # This interpreter's venv runs the generator, on the copy's code (PYTHONPATH beats the editable
    # install's path entry); `-o` keeps make from reinstalling the venv from the copy.
    env = {**os.environ, "PYTHONPATH": str(tree / "operator")}
    return subprocess.run(
        ["make", "--no-print-directory", "verify", f"VENV={venv}", "-o", f"{venv}/.installed-{stamp_sum}"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def commit_all(tree: Path, message: str) -> None:
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", message)


def test_verify_passes_on_a_clean_tree(tree: Path) -> None:
    done = make_verify(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(tree, "status", "--porcelain") == ""


@pytest.mark.parametrize("generated", [IJ_CRD, CHART_CRD], ids=["crds", "chart"])
def test_verify_fails_on_a_hand_edited_generated_file(tree: Path, generated: Path) -> None:
    path = tree / generated
    original = path.read_text("utf-8")
    edited = original.replace("        type: boolean\n", "        type: string\n", 1)
    assert edited != original
    path.write_text(edited, "utf-8")
    commit_all(tree, "hand edit")
    done = make_verify(tree)
    assert done.returncode != 0
    assert "generated files differ from the models" in done.stderr
    assert path.read_text("utf-8") == original  # regenerated, so the diff shows what the edit broke


def test_verify_fails_when_a_model_changes_without_regenerating(tree: Path) -> None:
    models = tree / "operator/datajobs/models/integrity.py"
    text = models.read_text("utf-8")
    changed = text.replace(
        "The unique identifier of the destination to check.", "The destination to check.", 1
    )
    assert changed != text
    models.write_text(changed, "utf-8")
    commit_all(tree, "model change only")
    done = make_verify(tree)
    assert done.returncode != 0
    assert "generated files differ from the models" in done.stderr
    assert "The destination to check." in (tree / IJ_CRD).read_text("utf-8")


def test_verify_fails_on_an_untracked_file_among_the_generated_ones(tree: Path) -> None:
    (tree / "crds" / "stale.datajobs.io.yaml").write_text("# left over\n", "utf-8")
    done = make_verify(tree)
    assert done.returncode != 0
    assert "untracked generated files" in done.stderr
