"""Turn a pydantic model's JSON schema into a structural apiextensions.k8s.io/v1 schema."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from datajobs.models.common import POD_TEMPLATE_MARKER

# JSON-schema keywords copied as they are (they mean the same in a CRD's JSONSchemaProps).
_COPIED = frozenset(
    {
        "type",
        "format",
        "description",
        "enum",
        "default",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "required",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
)
# Pydantic's annotations with no meaning for the API server.
_IGNORED = frozenset({"title", "examples"})
_NULL = {"type": "null"}


class NotStructural(ValueError):
    """The model uses a JSON-schema construct that has no structural CRD equivalent."""


def structural_schema(model: type[BaseModel], pod_template: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The model's schema with $refs inlined, Optional unions collapsed and CRD keywords only.

    `pod_template()` returns the schema that replaces every field marked with POD_TEMPLATE_MARKER.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _Converter(defs, pod_template).convert(raw, model.__name__)


class _Converter:
    def __init__(self, defs: dict[str, Any], pod_template: Callable[[], dict[str, Any]]) -> None:
        self._defs = defs
        self._pod_template = pod_template

    def convert(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        node = dict(node)
        if node.pop(POD_TEMPLATE_MARKER, False):
            schema = self._pod_template()
            if "description" in node:
                schema["description"] = node["description"]
            return schema
        base: dict[str, Any] = {}
        if "$ref" in node:
            base = self._resolve(node.pop("$ref"), path)
        if "anyOf" in node:
            base = self._collapse_optional(node.pop("anyOf"), path)
        # Keywords next to a $ref/anyOf (the field's description, default, CEL rules) win over the
        # referenced model's own (e.g. its class docstring).
        out = {**base, **self._keywords(node, path)}
        if out.get("default", ...) is None:
            del out["default"]
        return out

    def _resolve(self, ref: str, path: str) -> dict[str, Any]:
        name = ref.removeprefix("#/$defs/")
        if name == ref or name not in self._defs:
            raise NotStructural(f"{path}: unresolvable $ref {ref!r}")
        if f"<{name}>" in path:
            raise NotStructural(f"{path}: recursive model {name} cannot be a structural schema")
        return self.convert(self._defs[name], f"{path}<{name}>")

    def _collapse_optional(self, branches: list[dict[str, Any]], path: str) -> dict[str, Any]:
        # `X | None`: a field that may be omitted. It is simply not required; a null sent by a client is
        # pruned by the API server (fields that are not `nullable` drop nulls), so no nullable is needed.
        rest = [b for b in branches if b != _NULL]
        if len(rest) != 1:
            raise NotStructural(f"{path}: unions other than `X | None` are not structural")
        return self.convert(rest[0], path)

    def _keywords(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _IGNORED:
                continue
            if key == "properties":
                out[key] = {name: self.convert(sub, f"{path}.{name}") for name, sub in value.items()}
            elif key == "items":
                out[key] = self.convert(value, f"{path}[]")
            elif key == "additionalProperties":
                if value is False:
                    # Closed objects are what a structural schema is: unknown fields are pruned, or
                    # rejected under strict field validation. `false` next to `properties` is invalid.
                    continue
                if not isinstance(value, dict):
                    raise NotStructural(f"{path}: free-form objects need an explicit schema")
                out[key] = self.convert(value, f"{path}{{}}")
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                # JSON Schema 2020-12 puts the bound here; OpenAPI v3.0 (and so a CRD) uses a flag.
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
            elif key == "const":
                out["enum"] = [value]
            elif key in _COPIED:
                out[key] = copy.deepcopy(value)
            else:
                raise NotStructural(f"{path}: JSON-schema keyword {key!r} has no CRD equivalent")
        return out
