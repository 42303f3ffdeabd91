"""Build the krew archive of `kubectl datajobs` for one platform: the plugin and its libraries for each
CPython it supports, and a launcher that runs them with the user's python3.

    python scripts/krew_archive.py --os linux --arch amd64 [--out dist]

prints the archive's path and SHA-256 (what .krew.yaml's `uri` and `sha256` name at a release). It
downloads wheels from PyPI with pip; the plugin needs only the `kubernetes` client, pydantic and PyYAML.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHONS = ("3.11", "3.12", "3.13")
REQUIREMENTS = ("kubernetes>=31", "pydantic>=2.8,<3", "pyyaml>=6")
PLATFORMS = {  # (os, arch) -> the wheel platform tags pip may pick from
    ("linux", "amd64"): ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    ("linux", "arm64"): ("manylinux2014_aarch64", "manylinux_2_17_aarch64"),
    ("darwin", "amd64"): ("macosx_10_12_x86_64", "macosx_11_0_x86_64"),
    ("darwin", "arm64"): ("macosx_11_0_arm64",),
}
LAUNCHER = """#!/bin/sh
# kubectl-datajobs (krew): runs the plugin with python3 (3.11 to 3.13) from the libraries next to it.
here=$(dirname "$(readlink -f "$0" 2>/dev/null || printf %s "$0")")
python=${DATAJOBS_PYTHON:-python3}
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || {
  echo "error: kubectl datajobs needs python3 on PATH (or DATAJOBS_PYTHON)" >&2; exit 1; }
lib="$here/lib/python$version"
[ -d "$lib" ] || {
  echo "error: kubectl datajobs needs Python 3.11, 3.12 or 3.13 ($python is $version)" >&2; exit 1; }
exec "$python" -s -c '
import sys
lib = sys.argv.pop(1)
sys.path[:0] = [lib, lib.rsplit("/", 1)[0] + "/common"]
from datajobs.kubectlplugin.main import main
sys.exit(main())' "$lib" "$@"
"""


def version() -> str:
    for line in (REPO / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise SystemExit("no version in pyproject.toml")


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
        digest.update(str(f.relative_to(path.parent)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def share_identical(lib: Path) -> None:
    """Move what is byte-identical for every Python (the pure-Python libraries) to lib/common."""
    targets = [lib / f"python{p}" for p in PYTHONS]
    common = lib / "common"
    common.mkdir()
    for entry in sorted(targets[0].iterdir()):
        copies = [t / entry.name for t in targets]
        if entry.name == "__pycache__" or not all(c.exists() for c in copies):
            continue
        if len({tree_digest(c) for c in copies}) == 1:
            shutil.move(str(copies[0]), common / entry.name)
            for c in copies[1:]:
                shutil.rmtree(c) if c.is_dir() else c.unlink()


def build(os_name: str, arch: str, out: Path) -> Path:
    tags = PLATFORMS[(os_name, arch)]
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"kubectl-datajobs_v{version()}_{os_name}_{arch}.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        root, wheels = Path(tmp) / "root", Path(tmp) / "wheels"
        pip("wheel", "--no-deps", "-w", str(wheels), str(REPO))
        (wheel,) = wheels.glob("datajobs_operator-*.whl")
        for python in PYTHONS:
            target = root / "lib" / f"python{python}"
            platform_args = [a for tag in tags for a in ("--platform", tag)]
            pip(
                "install",
                "--no-compile",  # no .pyc: they differ per Python, and the user's python3 writes its own
                "--target",
                str(target),
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                python,
                *platform_args,
                *REQUIREMENTS,
            )
            pip("install", "--no-compile", "--target", str(target), "--no-deps", str(wheel))
            shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts with the build's shebang
            shutil.rmtree(target / "kubernetes" / "aio", ignore_errors=True)  # the asyncio client: unused
        share_identical(root / "lib")
        launcher = root / "kubectl-datajobs"
        launcher.write_text(LAUNCHER)
        launcher.chmod(0o755)
        (root / "README.md").write_text(
            "kubectl datajobs: see https://github.com/datajobs/datajobs-operator\n"
        )
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(root, arcname=".")
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--os", choices=sorted({o for o, _ in PLATFORMS}), default="linux")
    parser.add_argument("--arch", choices=sorted({a for _, a in PLATFORMS}), default="amd64")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    archive = build(args.os, args.arch, args.out)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    print(f"{archive} sha256={digest}")  # noqa: T201


if __name__ == "__main__":
    main()
