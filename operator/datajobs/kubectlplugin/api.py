"""The API server, reached like kubectl does: the user's kubeconfig (contexts, exec plugins) or in-cluster."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from datajobs.kubectlplugin.refs import Ref
from datajobs.models import GROUP, VERSION, KindInfo

__all__ = ["Api", "ApiException", "CommandError", "Connection", "connect"]


class CommandError(RuntimeError):
    """A failure to report on stderr as `error: ...` (exit code 1)."""


@dataclass(frozen=True)
class Connection:
    """Who and where: the flags kubectl takes."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None  # -n; else the context's namespace; else "default"
    request_timeout: float | None = None


def connect(conn: Connection) -> Api:
    """Load the kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) or, inside a pod, in-cluster config."""
    configuration = client.Configuration()
    namespace = conn.namespace
    default_file = os.path.expanduser(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
    in_cluster = (
        not conn.kubeconfig
        and not os.environ.get("KUBECONFIG")
        and not os.path.exists(default_file)
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    )
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
            if namespace is None:
                try:
                    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                        namespace = f.read().strip()
                except OSError:
                    namespace = None
        else:
            config.load_kube_config(
                config_file=conn.kubeconfig,
                context=conn.context,
                client_configuration=configuration,
                persist_config=False,
            )
            if namespace is None:
                contexts, active = config.list_kube_config_contexts(config_file=conn.kubeconfig)
                if conn.context:
                    active = next((c for c in contexts if c["name"] == conn.context), active)
                namespace = ((active or {}).get("context") or {}).get("namespace")
    except ConfigException as exc:
        raise CommandError(f"cannot load the kubeconfig: {exc}") from exc
    except OSError as exc:
        raise CommandError(f"cannot read the kubeconfig: {exc}") from exc
    return Api(client.ApiClient(configuration), namespace or "default", conn.request_timeout)


class Api:
    """The few calls the plugin makes; objects are plain dicts, as the API server sends them."""

    def __init__(self, api_client: client.ApiClient, namespace: str, request_timeout: float | None) -> None:
        self.client = api_client
        self.namespace = namespace
        self.timeout = request_timeout
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    @property
    def server(self) -> str:
        return str(self.client.configuration.host)

    def close(self) -> None:
        self.client.close()

    def _opts(self) -> dict[str, Any]:
        return {"_request_timeout": self.timeout} if self.timeout else {}

    # -- jobs ----------------------------------------------------------------------------------------------

    def list_jobs(self, kind: KindInfo, namespace: str | None, selector: str | None = None) -> list[dict]:
        """Jobs of one kind in a namespace, or in every namespace (namespace None); `kind` set on each."""
        kw: dict[str, Any] = {"label_selector": selector} if selector else {}
        listing: Any
        if namespace is None:
            listing = self.custom.list_cluster_custom_object(
                GROUP, VERSION, kind.plural, **kw, **self._opts()
            )
        else:
            listing = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, **kw, **self._opts()
            )
        items: list[dict[str, Any]] = listing.get("items") or []
        for item in items:  # a List's items carry no kind
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", kind.kind)
        return items

    def get_job(self, ref: Ref) -> dict[str, Any]:
        job = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, ref.namespace, ref.kind.plural, ref.name, **self._opts()
        )
        return cast(dict[str, Any], job)

    def patch_job(self, ref: Ref, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """A JSON merge patch (what `kubectl patch --type merge` sends); dry_run: validated, not stored."""
        kw: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        job = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, ref.namespace, ref.kind.plural, ref.name, body, **kw, **self._opts()
        )
        return cast(dict[str, Any], job)

    def watch_job(self, ref: Ref, resource_version: str, timeout: float) -> Iterator[tuple[str, dict]]:
        """(event type, object) for one job from `resource_version`, until `timeout` seconds pass."""
        w = watch.Watch()
        try:
            for event in w.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                ref.namespace,
                ref.kind.plural,
                field_selector=f"metadata.name={ref.name}",
                resource_version=resource_version,
                timeout_seconds=max(1, int(timeout)),
                _request_timeout=timeout + 5,
            ):
                obj = event["object"]
                if isinstance(obj, dict):
                    obj.setdefault("kind", ref.kind_name)
                    yield event["type"], obj
        finally:
            w.stop()

    # -- what the job's story is made of -----------------------------------------------------------------

    def _raw(self, response: Any) -> dict[str, Any]:
        return dict(json.loads(response.data))

    def events_of(self, namespace: str, kind: str, name: str, uid: str | None = None) -> list[dict]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        response = self.core.list_namespaced_event(
            namespace, field_selector=selector, _preload_content=False, **self._opts()
        )
        return list(self._raw(response).get("items") or [])

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = self.core.read_namespaced_pod(name, namespace, _preload_content=False, **self._opts())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._raw(response)

    def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        response = self.core.list_namespaced_config_map(
            namespace, label_selector=selector, _preload_content=False, **self._opts()
        )
        return list(self._raw(response).get("items") or [])

    def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        follow: bool,
        tail: int | None,
        timestamps: bool,
    ) -> Iterator[bytes]:
        """The container's log as the kubelet serves it through the API server, chunk by chunk."""
        kw: dict[str, Any] = {"follow": follow, "timestamps": timestamps, "_preload_content": False}
        if container:
            kw["container"] = container
        if tail is not None and tail >= 0:
            kw["tail_lines"] = tail
        if not follow and self.timeout:
            kw["_request_timeout"] = self.timeout
        response: Any = self.core.read_namespaced_pod_log(pod, namespace, **kw)
        try:
            if response.chunked:  # each chunk as the kubelet flushes it
                yield from response.read_chunked()
            else:
                while chunk := response.read1(65536):  # what has arrived, without waiting for a full buffer
                    yield chunk
        finally:
            response.release_conn()
