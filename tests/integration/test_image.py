"""The images `make image` builds: their configs, and the app image running as uid 65532 under runc.

The app image is unpacked with umoci into an OCI bundle and run by runc (what containerd runs pods with)
with a read-only root filesystem and a tmpfs on /tmp, as the chart runs it. A missing tool fails the test.
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

TOOLS = ("skopeo", "umoci", "runc")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed (scripts: image-build.sh install)", pytrace=False)
    return path


def _config(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        return dict(json.load(archive.extractfile(manifest[0]["Config"])))  # type: ignore[arg-type]


def _repo_tags(tar: Path) -> list[str]:
    with tarfile.open(tar) as archive:
        return list(json.load(archive.extractfile("manifest.json"))[0]["RepoTags"])  # type: ignore[arg-type]


def test_app_image_config_runs_datajobs_as_nonroot(images: Images) -> None:
    assert _repo_tags(images.app_tar) == [images.app_ref]
    config = _config(images.app_tar)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["datajobs"]
    assert config["Cmd"] == ["--help"]
    assert config["WorkingDir"] == "/tmp"
    assert any(e.startswith("PATH=/opt/datajobs/bin:") for e in config["Env"])


def test_pause_image_config(images: Images) -> None:
    assert _repo_tags(images.pause_tar) == [images.pause_ref]
    config = _config(images.pause_tar)["config"]
    assert config["Entrypoint"] == ["/pause"]
    assert config["User"] == "65535:65535"


@pytest.fixture(scope="module")
def bundle(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app image unpacked as an OCI runtime bundle (rootfs + config.json from the image config)."""
    for tool in TOOLS:
        _tool(tool)
    work = tmp_path_factory.mktemp("image")
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"docker-archive:{images.app_tar}", f"oci:{work / 'oci'}:app"],
        check=True,
    )
    subprocess.run(["umoci", "unpack", "--image", f"{work / 'oci'}:app", str(work / "bundle")], check=True)
    yield work / "bundle"
    shutil.rmtree(work, ignore_errors=True)


def _image_spec(bundle: Path) -> dict[str, Any]:
    return dict(json.loads((bundle / "config.json").read_text()))


def _run(bundle: Path, argv: list[str], name: str) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the image under runc as the image's user, on a read-only root with a tmpfs /tmp."""
    spec = _image_spec(bundle)
    spec["process"]["args"] = argv
    spec["process"]["terminal"] = False
    spec["root"] = {"path": str(bundle / "rootfs"), "readonly": True}
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/tmp"]
    spec["mounts"].append(
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=16m"],
        }
    )
    run_dir = bundle.parent / name
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(spec))
    return subprocess.run(
        ["runc", "--root", str(bundle.parent / "runc-state"), "run", "--bundle", str(run_dir), name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bundle_runs_the_entrypoint_as_65532(bundle: Path) -> None:
    process = _image_spec(bundle)["process"]
    assert (process["user"]["uid"], process["user"]["gid"]) == (65532, 65532)
    assert process["args"] == ["datajobs", "--help"]
    assert process["cwd"] == "/tmp"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        ((), "usage: datajobs"),
        (("worker", "--help"), "usage: datajobs worker"),
        (("run", "--help"), "usage: datajobs run"),
        (("adapter", "--help"), "usage: datajobs adapter"),
    ],
)
def test_app_image_commands_run_on_a_read_only_root(bundle: Path, args: tuple[str, ...], expect: str) -> None:
    name = "dj-" + ("-".join(a.strip("-") for a in args) or "default")
    proc = _run(bundle, ["datajobs", *(args or ("--help",))], name=name)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert expect in proc.stdout


def test_app_image_is_65532_imports_every_module_and_cannot_write_its_root(bundle: Path) -> None:
    probe = (
        "import os; print(os.getuid(), os.getgid(), flush=True); "
        "open('/tmp/ok', 'w').write('x'); "
        "import psycopg; print(psycopg.pq.version(), flush=True); "
        "import importlib, pkgutil, datajobs; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(datajobs.__path__, 'datajobs.')]; "
        "open('/opt/datajobs/x', 'w')"
    )
    proc = _run(bundle, ["python3", "-c", probe], name="dj-probe")
    lines = proc.stdout.splitlines()
    assert lines[:1] == ["65532 65532"], proc.stderr
    assert len(lines) == 2 and int(lines[1]) >= 140000, proc.stderr  # libpq shipped with psycopg[binary]
    assert "Read-only file system" in proc.stderr, proc.stderr
    assert proc.returncode == 1
