"""API keys: the document format, constant-time authentication, namespace scope, file reload."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import pytest

from datajobs.adapter.keys import KeyRing, KeysError, hash_key, parse_keys
from datajobs.adapter.keysources import FileKeySource, keys_from_secret


def doc(*entries: tuple[str, str, list[str]]) -> str:
    lines = ["keys:"]
    for name, key, namespaces in entries:
        lines += [f"- name: {name}", f"  sha256: {hash_key(key)}", f"  namespaces: {namespaces!r}"]
    return "\n".join(lines) + "\n"


def test_parse_and_authenticate() -> None:
    ring = KeyRing()
    ring.set_source("f", parse_keys(doc(("ops", "k-ops", ["*"]), ("team-a", "k-a", ["a", "b"])), "f"))
    assert len(ring) == 2
    ops, team = ring.authenticate("k-ops"), ring.authenticate("k-a")
    assert ops is not None and ops.name == "ops" and ops.allows("anything")
    assert team is not None and team.name == "team-a"
    assert team.allows("a") and team.allows("b") and not team.allows("c")
    assert ring.authenticate("k-b") is None
    assert ring.authenticate("") is None
    assert ring.authenticate(None) is None
    assert ring.authenticate("k-ops ") is None  # exact match only


def test_only_hashes_are_kept() -> None:
    keys = parse_keys(doc(("ops", "super-secret-value", ["*"])), "f")
    assert "super-secret-value" not in repr(keys)
    assert keys[0].digest == bytes.fromhex(hash_key("super-secret-value"))


def test_sources_merge_and_replace() -> None:
    ring = KeyRing()
    ring.set_source("file", parse_keys(doc(("a", "ka", ["*"])), "file"))
    ring.set_source("secret", parse_keys(doc(("b", "kb", ["*"])), "secret"))
    assert ring.authenticate("ka") and ring.authenticate("kb")
    ring.set_source("secret", ())
    assert ring.authenticate("ka") and ring.authenticate("kb") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not: [valid", "not valid YAML"),
        ("- a\n- b\n", "'keys' list"),
        ("keys: [1]", "keys[0]"),
        ("keys: [{name: a, sha256: abc, namespaces: ['*']}]", "64-hex-digit"),
        (f"keys: [{{name: a, sha256: {'1' * 64}, namespaces: ['*']}}]", "quote"),
        (f"keys: [{{name: a, sha256: {'a' * 64}, namespaces: []}}]", "non-empty list"),
        (f"keys: [{{name: a, sha256: {'a' * 64}, namespaces: '*'}}]", "non-empty list"),
        (f"keys: [{{name: '', sha256: {'a' * 64}, namespaces: ['*']}}]", "'name'"),
        (f"keys: [{{name: a, sha256: {'a' * 64}, namespaces: ['*'], key: plain}}]", "unknown fields"),
        (
            f"keys: [{{name: a, sha256: {'a' * 64}, namespaces: ['*']}}, "
            f"{{name: b, sha256: {'a' * 64}, namespaces: ['*']}}]",
            "repeats",
        ),
    ],
)
def test_malformed_documents_are_rejected(text: str, fragment: str) -> None:
    with pytest.raises(KeysError, match="src") as info:
        parse_keys(text, "src")
    assert fragment in str(info.value)


def test_secret_payload() -> None:
    text = doc(("a", "ka", ["ns"]))
    secret = {"data": {"keys.yaml": base64.b64encode(text.encode()).decode()}}
    assert keys_from_secret(secret, "s")[0].name == "a"
    with pytest.raises(KeysError, match="no data key"):
        keys_from_secret({"data": {}}, "s")
    with pytest.raises(KeysError, match="base64"):
        keys_from_secret({"data": {"keys.yaml": "%%%"}}, "s")


def test_file_source_reloads_and_keeps_last_good_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(doc(("a", "ka", ["*"])))
    ring = KeyRing()
    source = FileKeySource(path, ring, poll_interval=0.01)
    assert source.load() == 1

    def touch(text: str) -> None:
        path.write_text(text)
        future = time.time() + 5 + source.reloads  # a distinct mtime even on coarse filesystems
        os.utime(path, (future, future))

    async def scenario() -> None:
        task = asyncio.create_task(source.run())
        try:
            touch(doc(("b", "kb", ["*"])))
            await until(lambda: ring.authenticate("kb") is not None)
            assert ring.authenticate("ka") is None  # replaced, not merged
            touch("keys: [broken")
            reloads = source.reloads
            await until(
                lambda: source._signature is not None and source._signature[0] == path.stat().st_mtime_ns
            )
            assert source.reloads == reloads
            assert ring.authenticate("kb") is not None  # the last good keys stay
            touch(doc(("c", "kc", ["*"])))
            await until(lambda: ring.authenticate("kc") is not None)
        finally:
            task.cancel()

    asyncio.run(scenario())


async def until(predicate: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
