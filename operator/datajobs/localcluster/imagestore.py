"""The real node's containerd root kept between runs, so that a warm start imports no image.

One node at a time uses it (an exclusive flock held while the node runs); a second node started meanwhile
gets a fresh root in its own workdir, as before. The store holds the images of the last run only: when a
run asks for images it lacks (a source change rebuilt the app image), it is emptied and filled again, so
it never holds more than one set (~270 MB unpacked plus ~90 MB of content). Records of containers and pod
sandboxes an earlier run left behind (their processes, mounts and state went with that run's namespaces)
are what a rebooted node finds too: the kubelet garbage-collects those of pods that no longer exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from datajobs.localcluster.binaries import cache_root

log = logging.getLogger(__name__)

MANIFEST = "datajobs-images.json"


def default_directory() -> Path:
    """`~/.cache/datajobs/node-store/` (or under $DATAJOBS_CACHE)."""
    return cache_root() / "node-store"


@dataclass
class ImageStore:
    """A claimed containerd root; `root` is what containerd's config gets."""

    root: Path
    kept: bool  # True: the shared, persistent store; False: a throwaway root for this node alone
    _lock: IO[str] | None = field(default=None, repr=False)

    @staticmethod
    def missing(images: Mapping[str, Path], present: set[str]) -> dict[str, Path]:
        """The images (ref -> tar) to import: those containerd does not list (`present`; the kubelet's
        image garbage collection may have removed one the manifest names)."""
        return {ref: tar for ref, tar in images.items() if ref not in present}

    def remember(self, images: Mapping[str, Path]) -> None:
        """Record that `images` are imported (after every import succeeded)."""
        if self.kept:
            (self.root / MANIFEST).write_text(json.dumps(sorted(images)))

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None


def claim(directory: Path | None, fallback: Path, images: Mapping[str, Path]) -> ImageStore:
    """The persistent store at `directory` if no other node holds it, else a fresh root at `fallback`.

    A store that lacks any of `images` is emptied first (it keeps one set of images, see above)."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory.parent / f"{directory.name}.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            log.info(
                "the node image store %s is in use by another node: importing into a fresh one", directory
            )
        else:
            if set(images) - set(_read_manifest(directory)):
                _empty(directory)
            return ImageStore(directory, kept=True, _lock=lock)
    shutil.rmtree(fallback, ignore_errors=True)
    fallback.mkdir(parents=True)
    return ImageStore(fallback, kept=False)


def _read_manifest(root: Path) -> list[str]:
    with contextlib.suppress(OSError, ValueError):
        refs = json.loads((root / MANIFEST).read_text())
        if isinstance(refs, list):
            return [str(r) for r in refs]
    return []


def _empty(root: Path) -> None:
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
