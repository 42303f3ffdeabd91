"""The local images (pause, and the app image from the Dockerfile), built without Docker, cached by content.

`ensure_images()` returns docker-archive tars (for `ctr -n k8s.io images import`) and their refs, building
what is missing into ~/.cache/datajobs/images/ (or $DATAJOBS_CACHE/images/) under a file lock. Each tar is
named by a key hashed from everything its build reads, so a changed source gives a new image and a stale
one is never reused. The heavy steps live in image-base.sh (the Debian Python bases, the runtime's and the
build stage's with a C compiler: slow, keyed apart, rarely rebuilt) and image-build.sh (pause, and
`buildah bud` of the Dockerfile on those bases).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import platform
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from datajobs.localcluster.binaries import cache_root
from datajobs.localcluster.dockerignore import context_files

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
BASE_SCRIPT = HERE / "image-base.sh"
BUILD_SCRIPT = HERE / "image-build.sh"
PAUSE_SRC = HERE / "pause"
DEFAULT_REPO = HERE.parents[2]

BASE_REPO = "localhost/datajobs/python-base"
BUILD_BASE_REPO = "localhost/datajobs/python-build-base"
BUILD_PACKAGES = "gcc,libc6-dev,python3-dev"
"""What the Dockerfile's build stage adds to the base: it compiles the masking worker's C helper."""
PAUSE_REPO = "localhost/datajobs/pause"
APP_REPO = "localhost/datajobs/datajobs-operator"
KEEP = 6
"""Tars kept per kind (the most recently used): checkouts sharing a cache do not rebuild in turn."""


class ImagesError(RuntimeError):
    """An image could not be built; the message says which step and ends with its log's last lines."""


@dataclass(frozen=True)
class Images:
    """The built images: refs as the tars name them, and the docker-archive tars."""

    pause_ref: str
    pause_tar: Path
    app_ref: str
    app_tar: Path


@dataclass(frozen=True)
class Keys:
    """Content keys: each changes exactly when something its build reads changes."""

    base: str
    build_base: str
    pause: str
    app: str


def images_dir(env: Mapping[str, str] | None = None) -> Path:
    """`~/.cache/datajobs/images/` (or `$DATAJOBS_CACHE/images/`)."""
    return cache_root(env) / "images"


def _digest(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        for field in (name.encode(), str(len(data)).encode(), data):
            h.update(field)
            h.update(b"\0")
    return h.hexdigest()[:16]


def _files(root: Path, rel_paths: Iterable[str], label: str) -> list[tuple[str, bytes]]:
    """(label/path + exec bit, content) for each file: a mode change is a change too."""
    out: list[tuple[str, bytes]] = []
    for rel in rel_paths:
        path = root / rel
        executable = "x" if os.access(path, os.X_OK) else "-"
        out.append((f"{label}/{rel}:{executable}", path.read_bytes()))
    return out


def image_keys(repo_root: Path = DEFAULT_REPO) -> Keys:
    """The keys, from the base recipe (and the build base's packages), the pause sources, and the Dockerfile
    with its build context."""
    machine = [("machine", platform.machine().encode())]
    recipe = _files(BASE_SCRIPT.parent, [BASE_SCRIPT.name], "recipe")
    base = _digest([*machine, *recipe])
    build_base = _digest([*machine, *recipe, ("packages", BUILD_PACKAGES.encode())])
    build_script = _files(BUILD_SCRIPT.parent, [BUILD_SCRIPT.name], "recipe")
    if not PAUSE_SRC.is_dir():
        raise ImagesError(f"no pause sources in {PAUSE_SRC}: the images are built from a checkout")
    pause_sources = sorted(p.name for p in PAUSE_SRC.iterdir() if p.suffix in (".go", ".mod", ".sum"))
    pause = _digest([*machine, *build_script, *_files(PAUSE_SRC, pause_sources, "pause")])
    repo_root = Path(repo_root)
    build_files = [n for n in ("Dockerfile", ".dockerignore") if (repo_root / n).is_file()]
    app = _digest(
        [
            *machine,
            ("base", base.encode()),
            ("build_base", build_base.encode()),
            *build_script,
            *_files(repo_root, build_files, "build"),
            *_files(repo_root, context_files(repo_root), "context"),
        ]
    )
    return Keys(base=base, build_base=build_base, pause=pause, app=app)


@dataclass(frozen=True)
class _Plan:
    keys: Keys
    directory: Path

    def tar(self, kind: str) -> Path:
        return self.directory / f"{kind}-{getattr(self.keys, kind)}.tar"

    def ref(self, kind: str) -> str:
        repo = {"base": BASE_REPO, "build_base": BUILD_BASE_REPO, "pause": PAUSE_REPO, "app": APP_REPO}[kind]
        return f"{repo}:{getattr(self.keys, kind)}"

    def images(self) -> Images:
        return Images(self.ref("pause"), self.tar("pause"), self.ref("app"), self.tar("app"))


def find_images(repo_root: Path | None = None, env: Mapping[str, str] | None = None) -> Images | None:
    """The cached images for the current sources, or None when one of them is not built yet."""
    plan = _Plan(image_keys(repo_root or DEFAULT_REPO), images_dir(env))
    images = plan.images()
    return images if images.pause_tar.is_file() and images.app_tar.is_file() else None


def ensure_images(repo_root: Path | None = None, env: Mapping[str, str] | None = None) -> Images:
    """The images for the current sources, building the missing ones; raises ImagesError with the reason."""
    repo_root = Path(repo_root or DEFAULT_REPO)
    if not (repo_root / "Dockerfile").is_file():
        raise ImagesError(f"{repo_root} has no Dockerfile: ensure_images() needs a checkout of the project")
    env = dict(os.environ if env is None else env)
    plan = _Plan(image_keys(repo_root), images_dir(env))
    plan.directory.mkdir(parents=True, exist_ok=True)
    images = find_images(repo_root, env)
    if images is None:
        # One build at a time per cache: concurrent test sessions wait, then find the other's result.
        with (plan.directory / "build.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _build_missing(plan, repo_root, env)
        images = plan.images()
    for tar in (images.pause_tar, images.app_tar):
        os.utime(tar)  # "recently used": what _prune keeps
    return images


def _build_missing(plan: _Plan, repo_root: Path, env: dict[str, str]) -> None:
    todo = [k for k in ("pause", "app") if not plan.tar(k).is_file()]
    if not todo:
        return
    _run(plan, "install", ["install"], env)
    if "pause" in todo:
        _run(plan, "pause", ["pause", str(PAUSE_SRC), str(plan.tar("pause")), plan.ref("pause")], env)
    if "app" in todo:
        if not plan.tar("base").is_file():
            _run(plan, "base", [str(plan.tar("base")), plan.ref("base")], env, script=BASE_SCRIPT)
        if not plan.tar("build_base").is_file():
            args = [str(plan.tar("build_base")), plan.ref("build_base"), BUILD_PACKAGES]
            _run(plan, "build_base", args, env, script=BASE_SCRIPT)
        # buildah's store keeps the build's cached steps between builds, used by one build at a time (the
        # lock); stores of the earlier one-per-build layout whose owner is gone are removed.
        for stale in [s for s in plan.directory.glob("store*") if not _owner_alive(s)]:
            _run(plan, "clean-store", ["clean-store", str(stale)], env)
        args = [
            str(repo_root),
            str(plan.tar("base")),
            plan.ref("base"),
            str(plan.tar("build_base")),
            plan.ref("build_base"),
            str(plan.tar("app")),
            plan.ref("app"),
        ]
        _run(plan, "app", ["app", *args, str(plan.directory / "buildah")], env)
        os.utime(plan.tar("base"))
        os.utime(plan.tar("build_base"))
    for kind in ("base", "build_base", "pause", "app"):
        _prune(plan.directory, kind, keep=plan.tar(kind))
        _prune(plan.directory, kind, keep=plan.tar(kind).with_suffix(".log"), ext="log")


def _run(plan: _Plan, step: str, args: list[str], env: dict[str, str], script: Path | None = None) -> None:
    """One step of the build, its output in images/<step>[-<key>].log; ImagesError with the log's tail."""
    script = script or BUILD_SCRIPT
    key = getattr(plan.keys, step, None)
    build_log = plan.directory / (f"{step}-{key}.log" if key else f"{step}.log")
    started = time.monotonic()
    if step in ("base", "build_base", "app", "pause"):
        log.warning("building the %s image (log: %s)", step, build_log)
    with build_log.open("w") as sink:
        # In a session of its own, so that an interrupted caller (Ctrl-C, a test timeout) stops the whole
        # build rather than leaving buildah running in a store the next build cleans.
        proc = subprocess.Popen(
            ["bash", str(script), *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait()
        except BaseException:
            _stop_group(proc)
            raise
    if proc.returncode != 0:
        raise ImagesError(
            f"the {step} step of the image build failed (exit {proc.returncode}); last lines of "
            f"{build_log}:\n{_tail(build_log)}"
        )
    if step in ("base", "build_base", "app", "pause"):
        log.info("built the %s image in %.1f s", step, time.monotonic() - started)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group (buildah cleans up on it), SIGKILL it if still there after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _owner_alive(store: Path) -> bool:
    """Whether the process that named `store-<pid>` may still run (a name without a pid: unknown, so yes)."""
    pid = store.name.removeprefix("store-")
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read the log: {exc})"


def _prune(directory: Path, kind: str, keep: Path, ext: str = "tar") -> None:
    """Delete all but the KEEP most recently used tars (or logs) of a kind (never `keep`, just built)."""
    tars = sorted(directory.glob(f"{kind}-*.{ext}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [t for t in tars if t != keep][KEEP - 1 :]:
        old.unlink(missing_ok=True)


def unpacked_size(tar: Path) -> int:
    """Bytes of the files in a docker-archive's layers (what the image takes once unpacked)."""
    total = 0
    with tarfile.open(tar) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".tar") and member.isfile():
                layer = archive.extractfile(member)
                assert layer is not None
                with tarfile.open(fileobj=layer) as inner:
                    total += sum(m.size for m in inner.getmembers() if m.isfile())
    return total


def main(argv: list[str] | None = None) -> int:
    """`make image`: build (or find) the images and print their refs, tars, sizes and the time it took."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="the checkout to build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    try:
        images = ensure_images(args.repo)
    except ImagesError as exc:
        log.error("%s", exc)
        return 1
    elapsed = time.monotonic() - started
    for name, ref, tar in (
        ("pause", images.pause_ref, images.pause_tar),
        ("app", images.app_ref, images.app_tar),
    ):
        size, unpacked = tar.stat().st_size, unpacked_size(tar)
        sys.stdout.write(
            f"{name}: {ref}\n  tar {tar} ({size / 1e6:.1f} MB, unpacked {unpacked / 1e6:.1f} MB)\n"
        )
    sys.stdout.write(f"took {elapsed:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
