"""The real node's kept containerd root: one node at a time, one set of images, emptied when it lacks one."""

from __future__ import annotations

from pathlib import Path

from datajobs.localcluster import imagestore

IMAGES = {"localhost/datajobs/pause:1": Path("pause-1.tar"), "localhost/datajobs/app:1": Path("app-1.tar")}


def test_a_store_that_holds_the_images_is_kept_as_it_is(tmp_path: Path) -> None:
    store = imagestore.claim(tmp_path / "store", tmp_path / "fresh", IMAGES)
    assert store.kept and store.root == tmp_path / "store"
    (store.root / "io.containerd.content.v1.content").mkdir()
    store.remember(IMAGES)
    store.release()
    again = imagestore.claim(tmp_path / "store", tmp_path / "fresh", IMAGES)
    assert again.kept and (again.root / "io.containerd.content.v1.content").is_dir()
    again.release()


def test_a_store_lacking_an_image_is_emptied_before_containerd_starts(tmp_path: Path) -> None:
    store = imagestore.claim(tmp_path / "store", tmp_path / "fresh", IMAGES)
    (store.root / "io.containerd.content.v1.content").mkdir()
    store.remember(IMAGES)
    store.release()
    rebuilt = {**IMAGES, "localhost/datajobs/app:2": Path("app-2.tar")}
    again = imagestore.claim(tmp_path / "store", tmp_path / "fresh", rebuilt)
    assert again.kept and list(again.root.iterdir()) == []
    again.release()


def test_a_second_node_gets_a_fresh_root_while_the_store_is_in_use(tmp_path: Path) -> None:
    first = imagestore.claim(tmp_path / "store", tmp_path / "one", IMAGES)
    second = imagestore.claim(tmp_path / "store", tmp_path / "two", IMAGES)
    assert first.kept and not second.kept and second.root == tmp_path / "two" and second.root.is_dir()
    second.remember(IMAGES)  # a throwaway root records nothing
    assert not (second.root / imagestore.MANIFEST).exists()
    first.release()
    third = imagestore.claim(tmp_path / "store", tmp_path / "three", IMAGES)
    assert third.kept
    third.release()


def test_without_a_store_every_node_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "left-over").write_text("x")
    store = imagestore.claim(None, tmp_path / "fresh", IMAGES)
    assert not store.kept and list(store.root.iterdir()) == []


def test_what_to_import_is_what_containerd_does_not_list() -> None:
    present = {"localhost/datajobs/pause:1", "sha256:abc"}
    assert imagestore.ImageStore.missing(IMAGES, present) == {"localhost/datajobs/app:1": Path("app-1.tar")}
