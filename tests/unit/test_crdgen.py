"""The CRD generator: structural output, the validations each kind promises, stable bytes, the CLI."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from datajobs import cli
from datajobs.crdgen import add_arguments, main, render_crds
from datajobs.crdgen.cli import HEADER, to_yaml
from datajobs.crdgen.crd import CANCEL_FROZEN_RULE, FROZEN_AFTER_QUEUED, spec_frozen_rules
from datajobs.crdgen.podtemplate import SCHEMA_RESOURCE, UnsupportedSchema, dumps, extract, load
from datajobs.crdgen.schema import NotStructural, structural_schema
from datajobs.models import INTEGRITY_JOB, KINDS, MASKING_EXECUTION, KindInfo
from datajobs.models.common import POD_TEMPLATE_MARKER

REPO = Path(__file__).resolve().parents[2]
# Every keyword apiextensions.k8s.io/v1 JSONSchemaProps knows (a typo would be dropped or rejected).
JSON_SCHEMA_PROPS = frozenset(
    {
        "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
        "multipleOf", "enum", "maxProperties", "minProperties", "required", "items", "allOf", "oneOf",
        "anyOf", "not", "properties", "additionalProperties", "patternProperties", "dependencies",
        "additionalItems", "definitions", "externalDocs", "example", "nullable",
        "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
        "x-kubernetes-map-type", "x-kubernetes-validations",
    }
)  # fmt: skip
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (properties, items and additionalProperties)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


@functools.cache
def rendered() -> str:
    return json.dumps(render_crds())


def root_schema(info: KindInfo) -> dict[str, Any]:
    """A fresh copy of one kind's openAPIV3Schema (rendered once per test session)."""
    crd = next(c for c in json.loads(rendered()) if c["spec"]["names"]["kind"] == info.kind)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def spec_of(info: KindInfo) -> dict[str, Any]:
    spec: dict[str, Any] = root_schema(info)["properties"]["spec"]
    return spec


@pytest.fixture(scope="module")
def crds() -> list[dict[str, Any]]:
    return render_crds()


def test_one_crd_per_kind_with_names_scope_and_versions(crds: list[dict[str, Any]]) -> None:
    assert [c["metadata"]["name"] for c in crds] == [
        "integrityjobs.datajobs.io",
        "maskingexecutions.datajobs.io",
    ]
    for crd, info in zip(crds, KINDS, strict=True):
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        spec = crd["spec"]
        assert spec["group"] == "datajobs.io"
        assert spec["scope"] == "Namespaced"
        assert spec["names"] == {
            "kind": info.kind,
            "listKind": f"{info.kind}List",
            "plural": info.plural,
            "singular": info.singular,
            "shortNames": list(info.short_names),
            "categories": ["datajobs"],
        }
        [version] = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}
    assert crds[0]["spec"]["names"]["shortNames"] == ["ij"]
    assert crds[1]["spec"]["names"]["shortNames"] == ["mex"]


def test_printer_columns(crds: list[dict[str, Any]]) -> None:
    def columns(crd: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [
            (c["name"], c["type"], c["jsonPath"])
            for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
        ]

    assert columns(crds[0]) == [
        ("Status", "string", ".status.status"),
        ("Destination", "string", ".spec.destinationId"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    assert columns(crds[1]) == [
        ("Status", "string", ".status.status"),
        ("Job", "integer", ".spec.jobId"),
        ("Execution", "integer", ".status.executionId"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_schema_is_structural(info: KindInfo) -> None:
    for path, node in nodes(root_schema(info)):
        assert set(node) <= JSON_SCHEMA_PROPS, (path, set(node) - JSON_SCHEMA_PROPS)
        for forbidden in ("$ref", "$defs", "allOf", "oneOf", "not", "nullable", "title", "uniqueItems"):
            assert forbidden not in node, (path, forbidden)
        assert node.get("default", ...) is not None, path
        if node.get("x-kubernetes-int-or-string"):
            # The one anyOf a structural schema allows: int-or-string, with no type of its own.
            assert "type" not in node and node.get("anyOf", INT_OR_STRING_ANY_OF) == INT_OR_STRING_ANY_OF, (
                path
            )
            continue
        assert "anyOf" not in node, path
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path
        if "properties" in node:
            assert node["type"] == "object" and "additionalProperties" not in node, path
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), path
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), path
        assert set(node.get("required", [])) <= set(node.get("properties", {})), path
        for name in node.get("required", []):
            assert "default" not in node["properties"][name], f"{path}.{name}: a default defeats required"
        for key in node.get("x-kubernetes-list-map-keys", []):
            item = node["items"]
            assert key in item.get("required", []) or "default" in item["properties"][key], f"{path}: {key}"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_field_outside_the_template_is_described(info: KindInfo) -> None:
    for path, node in nodes(root_schema(info)):
        if ".template." in path or path in (".metadata", ".metadata.name"):
            continue
        if path.endswith(("[]", "{}")) and node["type"] != "object":
            continue
        assert node.get("description"), f"{info.kind}{path} has no description for kubectl explain"


def test_integrity_job_spec_validations() -> None:
    props = spec_of(INTEGRITY_JOB)["properties"]
    assert spec_of(INTEGRITY_JOB)["required"] == ["destinationId"]
    assert props["destinationId"]["minLength"] == 1
    assert props["destinationId"]["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "destinationId is immutable"}
    ]
    assert props["samplingRate"] == {
        "description": props["samplingRate"]["description"],
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
    }
    assert props["modelIds"]["type"] == "array" and props["modelIds"]["items"] == {"type": "string"}
    assert props["modelSamplePrimaryIds"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }


def test_masking_execution_spec_validations() -> None:
    spec = spec_of(MASKING_EXECUTION)
    props = spec["properties"]
    assert spec["required"] == ["jobId"]
    assert props["jobId"]["type"] == "integer" and props["jobId"]["minimum"] == 1
    assert props["jobId"]["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "jobId is immutable"}
    ]
    assert props["connectorType"]["enum"] == ["DATABASE", "FILE", "VSAM"]
    for name in ("sourceConnectorId", "targetConnectorId"):
        assert props[name]["type"] == "integer" and props[name]["minimum"] == 1


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_cancel_requested(info: KindInfo) -> None:
    cancel = spec_of(info)["properties"]["cancelRequested"]
    assert cancel["type"] == "object" and "required" not in cancel
    assert "presence" in cancel["description"]
    assert cancel["properties"]["expectedStatus"]["enum"] == ["QUEUED", "RUNNING"]
    assert cancel["properties"]["graceful"] == {
        "type": "boolean",
        "default": False,
        "description": cancel["properties"]["graceful"]["description"],
    }
    assert root_schema(info)["x-kubernetes-validations"] == [CANCEL_FROZEN_RULE, *spec_frozen_rules(info)]
    assert CANCEL_FROZEN_RULE["fieldPath"] == ".spec.cancelRequested"
    assert "oldSelf.status.status != 'CANCELLED'" in CANCEL_FROZEN_RULE["rule"]


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_envelope(info: KindInfo) -> None:
    root = root_schema(info)
    assert root["required"] == ["spec"]
    assert root["description"] == info.description
    # Only name may be restricted in root metadata; 63 because the name is a label value on the pod.
    assert root["properties"]["metadata"] == {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 63}},
    }


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_status_carries_the_vendor_fields_and_standard_conditions(info: KindInfo) -> None:
    status = root_schema(info)["properties"]["status"]
    vendor = structural_schema(info.vendor_model, load)
    assert set(status["properties"]) == set(vendor["properties"]) | {
        "observedGeneration",
        "conditions",
        "cancelRequestEvaluated",
        "attempts",
    }
    assert status.get("required") == vendor.get("required")
    for name, field in vendor["properties"].items():
        assert status["properties"][name] == field, name
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert status["properties"]["observedGeneration"]["minimum"] == 0


def test_masking_status_enum_is_the_six_states() -> None:
    status = root_schema(MASKING_EXECUTION)["properties"]["status"]
    assert status["properties"]["status"]["enum"] == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "WARNING",
        "FAILED",
        "CANCELLED",
    ]


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_template_is_kubernetes_pod_template_spec(info: KindInfo) -> None:
    template = spec_of(info)["properties"]["template"]
    expected = load()
    assert template == {**expected, "description": template["description"]}
    assert "default worker" in template["description"]
    pod_spec = template["properties"]["spec"]
    assert pod_spec["required"] == ["containers"]
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == [
        "name"
    ]
    container = containers["items"]
    assert container["required"] == ["name"]
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["items"]["properties"]["protocol"]["default"] == "TCP"  # list-map keys need a default
    quantity = container["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True and "pattern" in quantity
    probe_port = container["properties"]["livenessProbe"]["properties"]["httpGet"]["properties"]["port"]
    assert probe_port == {"anyOf": INT_OR_STRING_ANY_OF, "x-kubernetes-int-or-string": True}
    assert set(template["properties"]["metadata"]["properties"]) == {
        "annotations",
        "finalizers",
        "labels",
        "name",
        "namespace",
    }
    described = [path for path, node in nodes(template) if path and "description" in node]
    assert described == []


def test_stored_pod_template_is_canonical_and_self_contained() -> None:
    path = REPO / "operator" / "datajobs" / "models" / "schemas" / SCHEMA_RESOURCE
    text = path.read_text("utf-8")
    assert text == dumps(load())
    assert "$ref" not in text and '"description"' not in text and "x-kubernetes-patch" not in text
    assert len(text) < 200_000


def test_load_returns_an_independent_copy() -> None:
    first = load()
    first["properties"].clear()
    assert load()["properties"]


K = "#/components/schemas/"
# A miniature of Kubernetes' OpenAPI v3 document, with each construct the extractor must handle.
MINI_OPENAPI: dict[str, Any] = {
    "components": {
        "schemas": {
            "io.k8s.api.core.v1.PodTemplateSpec": {
                "description": "top",
                "type": "object",
                "properties": {
                    "metadata": {
                        "allOf": [{"$ref": K + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
                        "default": {},
                        "description": "meta",
                    },
                    "spec": {"allOf": [{"$ref": K + "io.k8s.api.core.v1.PodSpec"}], "default": {}},
                },
            },
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                "type": "object",
                "properties": {
                    name: {"type": "string", "description": "d"}
                    for name in (
                        "name",
                        "namespace",
                        "uid",
                        "resourceVersion",
                        "finalizers",
                        "labels",
                        "annotations",
                    )
                },
            },
            "io.k8s.api.core.v1.PodSpec": {
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": {"allOf": [{"$ref": K + "io.k8s.api.core.v1.Container"}], "default": {}},
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name",
                    },
                    "overhead": {
                        "type": "object",
                        "additionalProperties": {"$ref": K + "io.k8s.apimachinery.pkg.api.resource.Quantity"},
                    },
                },
            },
            "io.k8s.api.core.v1.Container": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "default": ""},
                    "protocol": {"type": "string", "default": "TCP"},
                    "port": {"$ref": K + "io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
                },
                "x-kubernetes-unions": [{"discriminator": "type"}],
            },
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
                "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}],
            },
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {
                "oneOf": [{"type": "string"}, {"type": "number"}]
            },
        }
    }
}


def test_extract_inlines_and_converts() -> None:
    schema = extract(MINI_OPENAPI)
    assert "description" not in json.dumps(schema)
    assert schema["properties"]["metadata"] == {
        "type": "object",
        "properties": {
            name: {"type": "string"} for name in ("annotations", "finalizers", "labels", "name", "namespace")
        },
    }
    spec = schema["properties"]["spec"]
    assert "default" not in spec and "default" not in spec["properties"]["containers"]["items"]
    assert spec["properties"]["containers"] == {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},  # required: its zero-value default would defeat that
                "protocol": {"type": "string", "default": "TCP"},
                "port": {"anyOf": INT_OR_STRING_ANY_OF, "x-kubernetes-int-or-string": True},
            },
        },
    }
    quantity = spec["properties"]["overhead"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True and quantity["pattern"].startswith("^(\\+|-)?")


def test_extract_refuses_recursion_and_unknown_keywords() -> None:
    recursive = {
        "components": {
            "schemas": {
                "io.k8s.api.core.v1.PodTemplateSpec": {
                    "type": "object",
                    "properties": {"x": {"$ref": K + "A"}},
                },
                "A": {"type": "object", "properties": {"a": {"$ref": K + "A"}}},
            }
        }
    }
    with pytest.raises(UnsupportedSchema, match="recursive"):
        extract(recursive)
    odd = {
        "components": {
            "schemas": {"io.k8s.api.core.v1.PodTemplateSpec": {"type": "object", "patternProperties": {}}}
        }
    }
    with pytest.raises(UnsupportedSchema, match="patternProperties"):
        extract(odd)


class _Union(BaseModel):
    value: int | str


class _FreeForm(BaseModel):
    value: dict[str, Any]


class _Marked(BaseModel):
    tpl: dict[str, Any] | None = Field(
        default=None, description="mine", json_schema_extra={POD_TEMPLATE_MARKER: True}
    )


def test_converter_refuses_what_is_not_structural() -> None:
    with pytest.raises(NotStructural, match="unions"):
        structural_schema(_Union, load)
    with pytest.raises(NotStructural, match="free-form"):
        structural_schema(_FreeForm, load)


def test_converter_substitutes_the_marked_field() -> None:
    schema = structural_schema(_Marked, lambda: {"type": "object", "properties": {"x": {"type": "string"}}})
    assert schema["properties"]["tpl"] == {
        "type": "object",
        "properties": {"x": {"type": "string"}},
        "description": "mine",
    }
    assert "required" not in schema


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert main(parser.parse_args(list(argv))) == 0
    return capsys.readouterr().out


def test_stdout_is_a_stable_multi_document_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli(capsys)
    second = run_cli(capsys)
    assert first == second
    assert first.startswith("# Code generated by datajobs crds. DO NOT EDIT.\n---\n")
    assert list(yaml.safe_load_all(first)) == render_crds()


def test_write_to_several_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "nested" / "b"
    assert run_cli(capsys, "--write", str(a), "--write", str(b)) == ""
    for directory in (a, b):
        assert sorted(p.name for p in directory.iterdir()) == [
            "integrityjobs.datajobs.io.yaml",
            "maskingexecutions.datajobs.io.yaml",
        ]
    for crd in render_crds():
        name = f"{crd['metadata']['name']}.yaml"
        text = (a / name).read_text("utf-8")
        assert text == HEADER + to_yaml(crd) == (b / name).read_text("utf-8")
        assert yaml.safe_load(text) == crd


def test_registered_as_the_crds_subcommand(tmp_path: Path) -> None:
    assert cli.main(["crds", "--write", str(tmp_path)]) == 0
    assert (tmp_path / "integrityjobs.datajobs.io.yaml").read_text("utf-8").startswith(HEADER)


@pytest.mark.parametrize("directory", ["crds", "charts/datajobs-operator/crds"])
def test_committed_crds_are_up_to_date(directory: str) -> None:
    for crd in render_crds():
        path = REPO / directory / f"{crd['metadata']['name']}.yaml"
        assert path.read_text("utf-8") == HEADER + to_yaml(crd), f"{path} is stale: run `make crds`"


def test_chart_metadata() -> None:
    chart = yaml.safe_load((REPO / "charts" / "datajobs-operator" / "Chart.yaml").read_text("utf-8"))
    assert (chart["apiVersion"], chart["name"], chart["version"], chart["appVersion"]) == (
        "v2",
        "datajobs-operator",
        "0.1.0",
        "0.1.0",
    )


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_spec_field_but_cancel_requested_is_frozen_once_the_job_left_queued(info: KindInfo) -> None:
    rules = spec_frozen_rules(info)
    fields = set(spec_of(info)["properties"]) - {"cancelRequested"}
    assert {r["fieldPath"] for r in rules} == {f".spec.{f}" for f in fields}
    for rule in rules:
        assert rule["rule"].startswith(FROZEN_AFTER_QUEUED)
        assert "oldSelf.status.status" in rule["messageExpression"]
