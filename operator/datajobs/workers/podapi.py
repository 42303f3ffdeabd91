"""A minimal Kubernetes API client for the worker's own pod (get, annotate): stdlib only, no client library.

In a pod it uses the service account (token and CA under /var/run/secrets/kubernetes.io/serviceaccount);
outside one, `DATAJOBS_KUBECONFIG` names a kubeconfig (client certificates or a bearer token)."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
KUBECONFIG_ENV = "DATAJOBS_KUBECONFIG"


class PodApiError(Exception):
    """The API server could not be reached or refused the request."""


@dataclass
class PodApi:
    """GET and merge-PATCH of one pod: `/api/v1/namespaces/<namespace>/pods/<pod>`."""

    server: str
    namespace: str
    pod: str
    context: ssl.SSLContext | None
    token: Callable[[], str | None]

    @property
    def url(self) -> str:
        return f"{self.server.rstrip('/')}/api/v1/namespaces/{self.namespace}/pods/{self.pod}"

    def _request(self, method: str, body: bytes | None, content_type: str, timeout: float) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": "datajobs-worker"}
        if body is not None:
            headers["Content-Type"] = content_type
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace")
            raise PodApiError(f"{method} {self.url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise PodApiError(f"{method} {self.url}: {exc}") from exc

    def get(self, timeout: float = 2.0) -> dict[str, Any]:
        return self._request("GET", None, "", timeout)

    def annotate(self, annotations: Mapping[str, str], timeout: float = 5.0) -> None:
        body = json.dumps({"metadata": {"annotations": dict(annotations)}}).encode()
        self._request("PATCH", body, "application/merge-patch+json", timeout)


def from_environment(env: Mapping[str, str]) -> PodApi | None:
    """The pod API for this worker, or None when it does not know its pod or has no way to reach the API."""
    namespace, pod = env.get("DATAJOBS_NAMESPACE", ""), env.get("DATAJOBS_POD_NAME", "")
    if not namespace or not pod:
        return None
    if env.get(KUBECONFIG_ENV):
        server, context, token = _from_kubeconfig(Path(env[KUBECONFIG_ENV]))
        return PodApi(server, namespace, pod, context, token)
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    host = f"[{host}]" if ":" in host else host
    ca = SERVICE_ACCOUNT_DIR / "ca.crt"
    context = ssl.create_default_context(cafile=str(ca)) if ca.exists() else ssl.create_default_context()
    token_file = SERVICE_ACCOUNT_DIR / "token"

    def read_token() -> str | None:  # re-read each time: projected tokens rotate
        try:
            return token_file.read_text().strip()
        except OSError:
            return None

    return PodApi(f"https://{host}:{port}", namespace, pod, context, read_token)


def _from_kubeconfig(path: Path) -> tuple[str, ssl.SSLContext | None, Callable[[], str | None]]:
    try:
        doc = yaml.safe_load(path.read_text())
        current = doc.get("current-context")
        contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        context = contexts.get(current) or next(iter(contexts.values()))
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in doc.get("users") or [] if u["name"] == context.get("user")), {}
        )
    except (OSError, yaml.YAMLError, KeyError, StopIteration, TypeError, AttributeError) as exc:
        raise PodApiError(f"cannot use kubeconfig {path}: {exc}") from exc
    server = str(cluster["server"])
    ssl_context: ssl.SSLContext | None = None
    if server.startswith("https"):
        ssl_context = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ssl_context.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif cluster.get("certificate-authority"):
            ssl_context.load_verify_locations(cafile=cluster["certificate-authority"])
        cert = _material(user, "client-certificate")
        key = _material(user, "client-key")
        if cert and key:
            # ssl loads a certificate chain only from files: write them privately, load, delete.
            with tempfile.TemporaryDirectory(prefix="datajobs-worker-") as tmp:
                cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert_path.write_bytes(cert)
                key_path.write_bytes(key)
                key_path.chmod(0o600)
                ssl_context.load_cert_chain(str(cert_path), str(key_path))
    token = user.get("token")
    token_file = user.get("tokenFile")

    def read_token() -> str | None:
        if token:
            return str(token)
        if token_file:
            return Path(token_file).read_text().strip()
        return None

    return server, ssl_context, read_token


def _material(user: Mapping[str, Any], name: str) -> bytes | None:
    if user.get(f"{name}-data"):
        return base64.b64decode(user[f"{name}-data"])
    if user.get(name):
        return Path(user[name]).read_bytes()
    return None
