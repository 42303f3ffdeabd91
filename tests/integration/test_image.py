"""The images `make image` builds: their configs, and the app image running as uid 65532 under runc.

The app image's layers are unpacked from its docker-archive tar (what `ctr images import` reads) and run
by runc — what containerd runs a pod's containers with — as the image config says (user, entrypoint,
env, workdir), with no capabilities, a read-only root filesystem and a tmpfs on /tmp, as the chart runs
it. A missing tool fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datajobs.localcluster.images import Images

WHITEOUT = ".wh."
NOT_IN_IMAGE = ("datajobs.kubectlplugin",)
"""Modules whose dependencies the image leaves out: `kubectl datajobs` runs on a user's machine (the
`[kubectl]` extra). Every other module must import inside the image."""


def _manifest(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as archive:
        return dict(json.load(archive.extractfile("manifest.json"))[0])  # type: ignore[arg-type]


def _config(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as archive:
        return dict(json.load(archive.extractfile(_manifest(tar)["Config"])))  # type: ignore[arg-type]


def test_app_image_config_runs_datajobs_as_nonroot(images: Images) -> None:
    assert _manifest(images.app_tar)["RepoTags"] == [images.app_ref]
    config = _config(images.app_tar)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["datajobs"]
    assert config["Cmd"] == ["--help"]
    assert config["WorkingDir"] == "/tmp"
    assert any(e.startswith("PATH=/opt/datajobs/bin:") for e in config["Env"])


def test_pause_image_config(images: Images) -> None:
    assert _manifest(images.pause_tar)["RepoTags"] == [images.pause_ref]
    config = _config(images.pause_tar)["config"]
    assert config["Entrypoint"] == ["/pause"]
    assert config["User"] == "65535:65535"


def _unpack(tar: Path, rootfs: Path) -> None:
    """Apply the image's layers in order, whiteouts included, as a container runtime does."""
    rootfs.mkdir()
    with tarfile.open(tar) as archive:
        for layer_name in _manifest(tar)["Layers"]:
            layer = archive.extractfile(layer_name)
            assert layer is not None
            with tarfile.open(fileobj=layer, mode="r|") as members:
                for member in members:
                    head, _, base = member.name.rpartition("/")
                    if base.startswith(WHITEOUT):
                        target = rootfs / head / base.removeprefix(WHITEOUT)
                        if base == WHITEOUT + WHITEOUT + ".opq":  # opaque: the directory's old content goes
                            for child in (rootfs / head).iterdir():
                                shutil.rmtree(child) if child.is_dir() else child.unlink()
                        elif target.is_dir() and not target.is_symlink():
                            shutil.rmtree(target)
                        else:
                            target.unlink(missing_ok=True)
                        continue
                    # fully trusted: keep the modes as built (the "tar" filter drops /tmp's sticky bit)
                    members.extract(member, rootfs, numeric_owner=True, filter="fully_trusted")


@pytest.fixture(scope="module")
def bundle(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app image unpacked (rootfs/) next to runc's default spec made to follow the image config."""
    if shutil.which("runc") is None:
        pytest.fail("`runc` is not installed (operator/datajobs/localcluster/image-build.sh install)")
    work = tmp_path_factory.mktemp("image")
    _unpack(images.app_tar, work / "rootfs")
    subprocess.run(["runc", "spec"], cwd=work, check=True)
    spec = json.loads((work / "config.json").read_text())
    image = _config(images.app_tar)["config"]
    uid, gid = (int(x) for x in image["User"].split(":"))
    spec["process"].update(
        user={"uid": uid, "gid": gid},
        args=[*image["Entrypoint"], *image["Cmd"]],
        env=image["Env"],
        cwd=image["WorkingDir"],
        terminal=False,
        capabilities={},  # the chart drops ALL
        noNewPrivileges=True,
    )
    spec["root"] = {"path": str(work / "rootfs"), "readonly": True}
    spec["mounts"].append(
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=16m"],
        }
    )
    (work / "config.json").write_text(json.dumps(spec))
    yield work
    shutil.rmtree(work, ignore_errors=True)


def _run(bundle: Path, argv: list[str] | None, name: str) -> subprocess.CompletedProcess[str]:
    """Run the image's command (or `argv`) under runc, in a bundle of its own sharing the rootfs."""
    spec = json.loads((bundle / "config.json").read_text())
    if argv is not None:
        spec["process"]["args"] = argv
    run_dir = bundle / name
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(spec))
    return subprocess.run(
        ["runc", "--root", str(bundle / "runc-state"), "run", "--bundle", str(run_dir), name],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (None, "usage: datajobs"),  # the image's own entrypoint and command
        (["datajobs", "worker", "--help"], "usage: datajobs worker"),
        (["datajobs", "run", "--help"], "usage: datajobs run"),
        (["datajobs", "adapter", "--help"], "usage: datajobs adapter"),
    ],
)
def test_app_image_commands_run_on_a_read_only_root(
    bundle: Path, argv: list[str] | None, expect: str
) -> None:
    name = "dj-" + ("-".join(argv[1:2]) if argv else "default")
    proc = _run(bundle, argv, name=name)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert expect in proc.stdout


def test_app_image_masks_with_the_compiled_helper(bundle: Path) -> None:
    """The worker in the image has the C helper (built in the build stage, loaded on the runtime base) and
    uses it; its output is algorithms.py's."""
    probe = (
        "from datajobs.workers import _fastmask, algorithms, batchmask; "
        "print(_fastmask.__file__, batchmask.compiled is _fastmask, flush=True); "
        "print(_fastmask.email(b'k', ['Ann.Lee@example.com'], True)[0] == algorithms.email(b'k', "
        "'Ann.Lee@example.com'))"
    )
    proc = _run(bundle, ["python3", "-c", probe], name="dj-fastmask")
    assert proc.returncode == 0, proc.stderr
    where, uses = proc.stdout.splitlines()[0].split()
    assert where.startswith("/opt/datajobs/lib/") and where.endswith(".so") and uses == "True", proc.stdout
    assert proc.stdout.splitlines()[1] == "True", proc.stdout


def test_app_image_has_no_compiler(bundle: Path) -> None:
    """The compiler and headers were the build stage's: none reached the runtime image."""
    for path in ("usr/bin/gcc", "usr/bin/cc", "usr/include/python3.11/Python.h", "usr/include/stdio.h"):
        assert not (bundle / "rootfs" / path).exists(), path


def test_app_image_is_65532_imports_every_module_and_cannot_write_its_root(bundle: Path) -> None:
    probe = (
        "import os; print(os.getuid(), os.getgid(), flush=True); "
        "open('/tmp/ok', 'w').write('x'); "
        "import psycopg; print(psycopg.pq.version(), flush=True); "
        "import importlib, pkgutil, datajobs; "
        f"[importlib.import_module(m.name) for m in pkgutil.walk_packages(datajobs.__path__, 'datajobs.') "
        f"if not m.name.startswith({NOT_IN_IMAGE!r})]; "
        "open('/opt/datajobs/x', 'w')"
    )
    proc = _run(bundle, ["python3", "-c", probe], name="dj-probe")
    lines = proc.stdout.splitlines()
    assert lines[:1] == ["65532 65532"], proc.stderr
    assert len(lines) == 2 and int(lines[1]) >= 140000, proc.stderr  # libpq shipped with psycopg[binary]
    assert "Read-only file system" in proc.stderr, proc.stderr
    assert proc.returncode == 1
