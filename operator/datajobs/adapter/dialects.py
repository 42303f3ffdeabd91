"""The two vendors' HTTP conventions: where the key is, which status a bad key gets, the error body."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web


def _prequel_keys(headers: Mapping[str, str]) -> list[str]:
    return [v for v in (headers.get("X-API-KEY"),) if v]


def _delphix_keys(headers: Mapping[str, str]) -> list[str]:
    keys = []
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        keys.append(rest.strip() if scheme.lower() == "bearer" and rest.strip() else authorization.strip())
    if headers.get("X-API-KEY"):
        keys.append(headers["X-API-KEY"])
    return keys


@dataclass(frozen=True)
class Dialect:
    name: str
    auth_failure_status: int
    auth_failure_message: str
    _keys: Callable[[Mapping[str, str]], list[str]]
    _body: Callable[[str], dict[str, Any]]

    def presented_keys(self, headers: Mapping[str, str]) -> list[str]:
        """The key(s) the caller sent, in the order the vendor's clients send them."""
        return self._keys(headers)

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.json_response(self._body(message), status=status, headers=headers)


PREQUEL = Dialect(
    name="prequel",
    auth_failure_status=401,
    auth_failure_message="unauthorized: missing or invalid X-API-KEY header",
    _keys=_prequel_keys,
    _body=lambda message: {"status": "error", "message": message, "data": None},
)

DELPHIX = Dialect(
    name="delphix",
    auth_failure_status=403,
    auth_failure_message="forbidden: missing or invalid API key (Authorization or X-API-KEY header)",
    _keys=_delphix_keys,
    _body=lambda message: {"errorMessage": message},
)

OTHER = Dialect(
    name="other",
    auth_failure_status=401,
    auth_failure_message="unauthorized",
    _keys=lambda headers: [],
    _body=lambda message: {"status": "error", "message": message, "data": None},
)


def dialect_for(path: str) -> Dialect:
    """Which vendor a path belongs to (so that even unknown sub-paths answer in that vendor's shape)."""
    if path == "/destinations" or path.startswith("/destinations/"):
        return PREQUEL
    if path == "/executions" or path.startswith("/executions/"):
        return DELPHIX
    return OTHER
