"""Install CustomResourceDefinitions (server-side apply) and wait until the API server serves them."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from datajobs.localcluster.rest import ApiError, Rest

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def load_crd_files(directory: Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in `directory`/*.yaml (sorted by file name)."""
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                docs.append(doc)
    return docs


def established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def apply_crds(
    rest: Rest, crds: Iterable[dict[str, Any]], field_manager: str = "datajobs-dev", timeout: float = 60.0
) -> list[str]:
    """Server-side apply each CRD, then wait until every one is Established; returns their names."""
    names = []
    crds_list = list(crds)
    # The first apply in a fresh API server compiles the CRDs' CEL rules against the whole pod template
    # schema: several seconds on a busy machine, longer than the client's usual request timeout.
    applier = dataclasses.replace(rest, timeout=max(rest.timeout, timeout))
    for crd in crds_list:
        name = crd["metadata"]["name"]
        applier.apply(f"{CRD_PATH}/{name}", crd, field_manager)
        names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        _poll(functools.partial(_is_established, rest, name), f"CRD {name} Established", deadline)
    # Established is not enough: right after it, the new storage may still answer 429 "(re)initializing".
    for crd in crds_list:
        for path in served_list_paths(crd):
            _poll(functools.partial(_lists, rest, path), f"GET {path}", deadline)
    return names


def _is_established(rest: Rest, name: str) -> bool:
    return established(rest.get(f"{CRD_PATH}/{name}"))


def _lists(rest: Rest, path: str) -> bool:
    return bool(rest.request("GET", path, query={"limit": "1"}))


def served_list_paths(crd: dict[str, Any]) -> list[str]:
    """The cluster-wide list URL of each served version of `crd`."""
    spec = crd["spec"]
    return [
        f"/apis/{spec['group']}/{v['name']}/{spec['names']['plural']}"
        for v in spec.get("versions", [])
        if v.get("served", True)
    ]


def _poll(probe: Callable[[], bool], what: str, deadline: float) -> None:
    last: object = None
    while True:
        try:
            if probe():
                return
        except ApiError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} (last: {last})")
        time.sleep(0.1)
