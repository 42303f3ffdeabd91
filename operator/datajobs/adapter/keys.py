"""API keys: parse the keys document (hashes only), scope keys to namespaces, compare in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

ALL_NAMESPACES = "*"
KEYS_DATA_KEY = "keys.yaml"
"""The data key of the Secret that holds the keys document."""

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class KeysError(ValueError):
    """The keys document is malformed (the message never contains key material)."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: a label, the SHA-256 of the key, and the namespaces it may touch."""

    name: str
    digest: bytes
    namespaces: frozenset[str]

    def allows(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as written in the keys document."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_keys(text: str, source: str) -> tuple[ApiKey, ...]:
    """Parse `keys: [{name, sha256, namespaces}]`. Raises KeysError naming the source and the entry."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KeysError(f"{source}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeysError(f"{source}: expected a mapping with a 'keys' list")
    keys: list[ApiKey] = []
    seen: set[bytes] = set()
    for i, entry in enumerate(doc["keys"]):
        keys.append(_parse_entry(entry, f"{source}: keys[{i}]"))
        if keys[-1].digest in seen:
            raise KeysError(f"{source}: keys[{i}] repeats the hash of an earlier key")
        seen.add(keys[-1].digest)
    return tuple(keys)


def _parse_entry(entry: Any, where: str) -> ApiKey:
    if not isinstance(entry, dict):
        raise KeysError(f"{where}: expected a mapping with name, sha256 and namespaces")
    unknown = set(entry) - {"name", "sha256", "namespaces"}
    if unknown:
        raise KeysError(f"{where}: unknown fields {sorted(map(str, unknown))}")
    name, digest, namespaces = entry.get("name"), entry.get("sha256"), entry.get("namespaces")
    if not isinstance(name, str) or not name:
        raise KeysError(f"{where}: 'name' must be a non-empty string")
    if isinstance(digest, int | float):
        raise KeysError(f"{where} ({name}): quote the 'sha256' value (YAML read it as a number)")
    if not isinstance(digest, str) or not _HEX_SHA256.match(digest):
        raise KeysError(f"{where} ({name}): 'sha256' must be the 64-hex-digit SHA-256 of the key")
    if (
        not isinstance(namespaces, list)
        or not namespaces
        or not all(isinstance(ns, str) and ns for ns in namespaces)
    ):
        raise KeysError(f"{where} ({name}): 'namespaces' must be a non-empty list of names, or ['*']")
    return ApiKey(name=name, digest=bytes.fromhex(digest), namespaces=frozenset(namespaces))


class KeyRing:
    """The accepted keys, merged from every source; each source's keys are replaced as a whole."""

    def __init__(self) -> None:
        self._sources: dict[str, tuple[ApiKey, ...]] = {}
        self._keys: tuple[ApiKey, ...] = ()

    def __len__(self) -> int:
        return len(self._keys)

    def set_source(self, source: str, keys: Iterable[ApiKey]) -> None:
        self._sources[source] = tuple(keys)
        self._keys = tuple(k for ks in self._sources.values() for k in ks)

    def names(self) -> list[str]:
        return [k.name for k in self._keys]

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key matching `presented`, or None. Compares against every key, in constant time each."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        match: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest) and match is None:
                match = key
        return match
