"""The images' cache keys follow exactly what each build reads; the .dockerignore rules pick the context."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from datajobs.localcluster import images
from datajobs.localcluster.dockerignore import context_files, excluded, parse
from datajobs.localcluster.images import ImagesError, ensure_images, find_images, image_keys, images_dir
from helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the files an image build reads, plus files it must not read."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "operator" / "datajobs", root / "operator" / "datajobs")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("x = 1\n")
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# guide\n")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text("")
    (root / "operator" / "datajobs" / "__pycache__").mkdir(exist_ok=True)
    (root / "operator" / "datajobs" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    (root / "operator" / "datajobs_operator.egg-info").mkdir()
    (root / "operator" / "datajobs_operator.egg-info" / "PKG-INFO").write_text("Name: x\n")
    return root


def test_context_is_what_the_dockerignore_lets_through(repo: Path) -> None:
    files = context_files(repo)
    assert "pyproject.toml" in files and "README.md" not in files  # docs edits keep the image
    assert "operator/datajobs/localcluster/images.py" in files
    assert not [
        f for f in files if f.startswith(("tests/", "docs/", ".venv/", "Dockerfile", ".dockerignore"))
    ]
    assert not [f for f in files if "__pycache__" in f or "egg-info" in f]


@pytest.mark.parametrize(
    "path",
    ["operator/datajobs/cli.py", "pyproject.toml", "Dockerfile", ".dockerignore"],
)
def test_app_key_changes_with_each_file_the_build_reads(repo: Path, path: str) -> None:
    before = image_keys(repo)
    with (repo / path).open("a") as f:
        f.write("\n# changed\n")
    after = image_keys(repo)
    assert after.app != before.app
    assert (after.base, after.build_base, after.pause) == (before.base, before.build_base, before.pause)


def test_a_new_source_file_and_an_exec_bit_change_the_app_key(repo: Path) -> None:
    before = image_keys(repo)
    (repo / "operator" / "datajobs" / "extra.py").write_text("")
    added = image_keys(repo)
    assert added.app != before.app
    (repo / "operator" / "datajobs" / "extra.py").chmod(0o755)
    assert image_keys(repo).app != added.app


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_x.py",
        "docs/guide.md",
        "README.md",
        ".venv/bin/python",
        "operator/datajobs/__pycache__/cli.cpython-311.pyc",
        "operator/datajobs_operator.egg-info/PKG-INFO",
        "operator/datajobs/workers/_fastmask.cpython-311-x86_64-linux-gnu.so",  # built for the host's venv
    ],
)
def test_app_key_ignores_files_outside_the_context(repo: Path, path: str) -> None:
    before = image_keys(repo)
    with (repo / path).open("a") as f:
        f.write("changed\n")
    (repo / "notes.txt").write_text("not in the context\n")
    assert image_keys(repo) == before


def test_base_and_pause_keys_follow_their_own_recipes(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bases are keyed by their recipe (and the build base by its packages too); a changed base
    recipe rebuilds the app image too."""
    before = image_keys(repo)
    assert before.build_base != before.base
    recipe = tmp_path / "image-base.sh"
    recipe.write_text(images.BASE_SCRIPT.read_text() + "\n# changed\n")
    monkeypatch.setattr(images, "BASE_SCRIPT", recipe)
    changed_base = image_keys(repo)
    assert changed_base.base != before.base and changed_base.app != before.app
    assert changed_base.build_base != before.build_base
    assert changed_base.pause == before.pause
    monkeypatch.setattr(images, "BUILD_PACKAGES", images.BUILD_PACKAGES + ",make")
    more = image_keys(repo)
    assert more.build_base != changed_base.build_base and more.app != changed_base.app
    assert more.base == changed_base.base

    pause = tmp_path / "pause"
    shutil.copytree(images.PAUSE_SRC, pause)
    monkeypatch.setattr(images, "PAUSE_SRC", pause)
    assert image_keys(repo).pause == before.pause
    with (pause / "main.go").open("a") as f:
        f.write("\n// changed\n")
    assert image_keys(repo).pause != before.pause


def test_keys_are_stable_and_short(repo: Path) -> None:
    keys = image_keys(repo)
    assert keys == image_keys(repo)
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in (keys.base, keys.build_base, keys.pause, keys.app))


@pytest.mark.parametrize(
    ("rules", "path", "out"),
    [
        ("*\n!operator/\n", "operator/a/b.py", False),
        ("*\n!operator/\n", "tests/a.py", True),
        ("*\n!operator/\noperator/**/__pycache__\n", "operator/a/__pycache__/x.pyc", True),
        ("*\n!operator/\noperator/**/__pycache__\n", "operator/__pycache__/x.pyc", True),
        ("*\n!operator/\noperator/*.egg-info\n", "operator/x.egg-info/PKG-INFO", True),
        ("*\n!operator/\noperator/*.egg-info\n", "operator/a/x.egg-info/PKG-INFO", False),
        ("# comment\n\n*.md\n!README.md\n", "README.md", False),
        ("*.md\n!README.md\n", "CHANGES.md", True),
        ("docs?\n", "docs1/a", True),
    ],
)
def test_dockerignore_rules_last_match_wins(rules: str, path: str, out: bool) -> None:
    assert excluded(path, parse(rules)) is out


def test_find_images_is_none_until_both_tars_exist(repo: Path, tmp_path: Path) -> None:
    env = {"DATAJOBS_CACHE": str(tmp_path / "cache")}
    assert images_dir(env) == tmp_path / "cache" / "images"
    assert find_images(repo, env) is None
    keys = image_keys(repo)
    images_dir(env).mkdir(parents=True)
    (images_dir(env) / f"pause-{keys.pause}.tar").write_bytes(b"")
    assert find_images(repo, env) is None
    (images_dir(env) / f"app-{keys.app}.tar").write_bytes(b"")
    found = find_images(repo, env)
    assert found is not None
    assert found.app_ref == f"localhost/datajobs/datajobs-operator:{keys.app}"
    assert found.pause_ref == f"localhost/datajobs/pause:{keys.pause}"
    assert found.app_tar == images_dir(env) / f"app-{keys.app}.tar"
    assert ensure_images(repo, env) == found  # cached: nothing is built


def test_ensure_images_needs_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(ImagesError, match="no Dockerfile"):
        ensure_images(tmp_path, {"DATAJOBS_CACHE": str(tmp_path / "cache")})


def test_a_failed_step_raises_with_the_log_tail(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "image-build.sh"
    script.write_text('echo "step $1 ran"; echo "the reason it broke" >&2; exit 3\n')
    monkeypatch.setattr(images, "BUILD_SCRIPT", script)
    env = {"DATAJOBS_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    with pytest.raises(ImagesError, match=r"(?s)install step.*exit 3.*step install ran.*the reason it broke"):
        ensure_images(repo, env)
    assert find_images(repo, env) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_an_interrupted_step_stops_its_whole_process_group(tmp_path: Path) -> None:
    """buildah runs below bash: stopping bash alone would leave it building in a store the next one cleans."""
    pid_file = tmp_path / "child"
    proc = subprocess.Popen(["bash", "-c", f"sleep 300 & echo $! > {pid_file}; wait"], start_new_session=True)
    child = int(wait_for(lambda: pid_file.read_text().strip(), timeout=30, ignore=(FileNotFoundError,)))
    assert _alive(child)
    images._stop_group(proc)
    assert proc.returncode is not None
    wait_for(lambda: not _alive(child), timeout=30, message="the grandchild to be gone")


def test_stale_stores_are_those_whose_owner_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert images._owner_alive(tmp_path / f"store-{os.getpid()}")
    assert not images._owner_alive(tmp_path / f"store-{gone.pid}")
    assert images._owner_alive(tmp_path / "store")  # no pid in the name: left alone
