"""A minimal HTTPS client for the local API server (admin client cert), used while starting it."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from datajobs.localcluster.pki import Pki


class ApiError(RuntimeError):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class Rest:
    """Talks to `server` with the admin certificate from `pki`."""

    server: str
    pki: Pki
    timeout: float = 10.0

    def __post_init__(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        self._ctx = ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON (or text) body, raises ApiError on HTTP errors."""
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=self.timeout) as resp:
                raw = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace"), f"{method} {path}") from exc
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, obj: dict[str, Any]) -> Any:
        """POST `obj` to the collection `path`; an existing object (409) is not an error."""
        try:
            return self.request("POST", path, obj)
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    def apply(self, path: str, obj: dict[str, Any], field_manager: str) -> Any:
        """Server-side apply `obj` at the object URL `path` (forcing conflicts)."""
        return self.request(
            "PATCH",
            path,
            obj,
            content_type="application/apply-patch+yaml",
            query={"fieldManager": field_manager, "force": "true"},
        )
