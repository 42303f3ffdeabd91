"""Kubernetes' core/v1 PodTemplateSpec as a structural CRD schema: extracted once, loaded from the repo."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

KUBERNETES_VERSION = "v1.34.4"
SCHEMA_RESOURCE = "podtemplatespec-v1.34.json"
ROOT = "io.k8s.api.core.v1.PodTemplateSpec"
_REF_PREFIX = "#/components/schemas/"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# The fields an embedded ObjectMeta keeps (controller-gen's generateEmbeddedObjectMeta); the rest is
# set by the API server on real objects and means nothing in a template.
_EMBEDDED_META_FIELDS = ("annotations", "finalizers", "labels", "name", "namespace")
# Pattern controller-gen emits for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
    r"|(\.[0-9]+))))?$"
)
# Keywords a CRD's JSONSchemaProps accepts that the core schema uses; anything else fails loudly.
_KEPT = frozenset(
    {
        "type",
        "format",
        "properties",
        "items",
        "additionalProperties",
        "required",
        "default",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
# OpenAPI-only annotations with no CRD equivalent (strategic merge patch and union hints).
_DROPPED = frozenset(
    {"description", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-unions"}
)


class UnsupportedSchema(ValueError):
    """The OpenAPI document holds something this converter does not know how to make structural."""


def int_or_string(pattern: str | None = None) -> dict[str, Any]:
    """The structural form of an int-or-string value (as controller-gen writes it)."""
    schema: dict[str, Any] = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    if pattern:
        schema["pattern"] = pattern
    return schema


def extract(openapi: dict[str, Any], root: str = ROOT) -> dict[str, Any]:
    """Inline `root` from a Kubernetes OpenAPI v3 document into a structural schema without descriptions."""
    schemas: dict[str, Any] = openapi["components"]["schemas"]

    def resolve(ref: str, path: tuple[str, ...]) -> dict[str, Any]:
        if not ref.startswith(_REF_PREFIX):
            raise UnsupportedSchema(f"external $ref {ref!r}")
        name = ref[len(_REF_PREFIX) :]
        if name in path:
            raise UnsupportedSchema(f"recursive schema: {' -> '.join((*path, name))}")
        if name == _INT_OR_STRING:
            return int_or_string()
        if name == _QUANTITY:
            return int_or_string(QUANTITY_PATTERN)
        target = schemas[name]
        if name == _OBJECT_META:
            target = {
                "type": "object",
                "properties": {k: target["properties"][k] for k in _EMBEDDED_META_FIELDS},
            }
        return convert(target, (*path, name))

    def convert(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "$ref" in node:
            out.update(resolve(node["$ref"], path))
        if "allOf" in node:
            if len(node["allOf"]) != 1 or set(node["allOf"][0]) != {"$ref"}:
                raise UnsupportedSchema(f"allOf other than a single $ref at {path}")
            out.update(resolve(node["allOf"][0]["$ref"], path))
        for key, value in node.items():
            if key in ("$ref", "allOf") or key in _DROPPED:
                continue
            if key not in _KEPT:
                raise UnsupportedSchema(f"keyword {key!r} at {'/'.join(path)}")
            if key == "properties":
                out[key] = {name: convert(sub, path) for name, sub in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                out[key] = convert(value, path)
            elif key == "default" and isinstance(value, dict):
                # openapi-gen's `default: {}` on every non-pointer struct: as a CRD default it would
                # materialise empty objects (e.g. `spec: {}`, which then fails `required`).
                continue
            else:
                out[key] = copy.deepcopy(value)
        for name in out.get("required", []):
            # openapi-gen gives required strings and numbers their zero value as a default; a CRD would
            # apply it before checking `required`, so a container without a name would be accepted.
            out["properties"][name].pop("default", None)
        return out

    return convert(schemas[root], (root,))


def load() -> dict[str, Any]:
    """The stored, structural PodTemplateSpec schema (a fresh copy the caller may change)."""
    text = resources.files("datajobs.models").joinpath("schemas", SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def dumps(schema: dict[str, Any]) -> str:
    """The stored file's exact bytes: sorted keys, one key per line, so diffs stay readable."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"
