"""The generated CRDs on a real API server: examples accepted, bad input rejected naming the field."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
API_VERSION = "datajobs.io/v1alpha1"
RESOURCE = {"IntegrityJob": "integrityjobs.datajobs.io", "MaskingExecution": "maskingexecutions.datajobs.io"}
BASE_SPEC: dict[str, dict[str, Any]] = {
    "IntegrityJob": {"destinationId": "dest-1"},
    "MaskingExecution": {"jobId": 167},
}
# The vendor part the operator writes on its first status write (every vendor-required field).
FULL_STATUS: dict[str, dict[str, Any]] = {
    "IntegrityJob": {
        "id": "uid-1",
        "org_schema": "",
        "submitted_at": "2026-01-01T00:00:00Z",
        "started_at": "0001-01-01T00:00:00Z",
        "ended_at": "0001-01-01T00:00:00Z",
        "destination_id": "dest-1",
        "status": "QUEUED",
        "model_ids": [],
        "model_sample_primary_ids": {},
        "data_integrity_results": [],
        "log_message": "",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Queued",
                "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "reason": "WaitingForSlot",
                "message": "waiting for a free slot",
                "observedGeneration": 1,
            }
        ],
    },
    "MaskingExecution": {
        "executionId": 42,
        "jobId": 167,
        "status": "QUEUED",
        "submitTime": "2026-01-01T00:00:00Z",
    },
}


def manifest(kind: str, name: str, spec: Any = None, **metadata: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, **metadata}}
    if spec is not None:
        obj["spec"] = spec
    return obj


@pytest.fixture
def k(kubectl: Callable[..., subprocess.CompletedProcess[str]], crds: list[str], namespace: str) -> Kubectl:
    return Kubectl(kubectl, namespace)


class Kubectl:
    """The `kubectl` fixture in the test's namespace, taking manifests on stdin, not failing by itself."""

    def __init__(self, kubectl: Callable[..., subprocess.CompletedProcess[str]], namespace: str) -> None:
        self._kubectl = kubectl
        self.namespace = namespace

    def __call__(self, *args: str, stdin: Any = None) -> subprocess.CompletedProcess[str]:
        text = stdin if stdin is None or isinstance(stdin, str) else json.dumps(stdin)
        return self._kubectl("-n", self.namespace, *args, check=False, input=text)

    def ok(self, *args: str, stdin: Any = None) -> str:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def create(self, obj: dict[str, Any]) -> None:
        self.ok("create", "-f", "-", stdin=obj)

    def patch(
        self, kind: str, name: str, patch: dict[str, Any], status: bool = False
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--subresource=status"] if status else []
        return self("patch", RESOURCE[kind], name, "--type", "merge", "-p", json.dumps(patch), *extra)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.ok("get", RESOURCE[kind], name, "-o", "json"))
        return obj


def assert_rejected(done: subprocess.CompletedProcess[str], *fields: str) -> None:
    """Refused by the API server (not by kubectl's client side), with a message naming each field."""
    assert done.returncode != 0, f"accepted: {done.stdout}"
    assert "error validating data" not in done.stderr, done.stderr  # client-side validation
    assert "Error from server" in done.stderr or " is invalid" in done.stderr, done.stderr
    for field in fields:
        assert field in done.stderr, f"{field!r} not named in: {done.stderr}"


IJ, MEX = "IntegrityJob", "MaskingExecution"
LONG_NAME = "x" * 64
CREATE_CASES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    # (id, kind, spec, fields the error must name)
    (
        "expectedStatus-enum",
        IJ,
        {"destinationId": "d", "cancelRequested": {"expectedStatus": "DONE"}},
        ("spec.cancelRequested.expectedStatus", "QUEUED"),
    ),
    (
        "expectedStatus-type",
        IJ,
        {"destinationId": "d", "cancelRequested": {"expectedStatus": 5}},
        ("spec.cancelRequested.expectedStatus",),
    ),
    (
        "expectedStatus-lowercase",
        MEX,
        {"jobId": 1, "cancelRequested": {"expectedStatus": "running"}},
        ("spec.cancelRequested.expectedStatus",),
    ),
    ("connectorType-enum", MEX, {"jobId": 1, "connectorType": "NFS"}, ("spec.connectorType", "DATABASE")),
    ("jobId-zero", MEX, {"jobId": 0}, ("spec.jobId", "greater than or equal to 1")),
    ("jobId-negative", MEX, {"jobId": -3}, ("spec.jobId",)),
    ("jobId-string", MEX, {"jobId": "abc"}, ("spec.jobId", "integer")),
    ("jobId-fraction", MEX, {"jobId": 1.5}, ("spec.jobId",)),
    ("jobId-missing", MEX, {"connectorType": "FILE"}, ("spec.jobId: Required value",)),
    ("spec-missing", MEX, None, ("spec: Required value",)),
    (
        "samplingRate-zero",
        IJ,
        {"destinationId": "d", "samplingRate": 0},
        ("spec.samplingRate", "greater than 0"),
    ),
    (
        "samplingRate-above-one",
        IJ,
        {"destinationId": "d", "samplingRate": 1.5},
        ("spec.samplingRate", "less than or equal to 1"),
    ),
    ("samplingRate-string", IJ, {"destinationId": "d", "samplingRate": "half"}, ("spec.samplingRate",)),
    ("destinationId-missing", IJ, {"orgSchema": "acme"}, ("spec.destinationId: Required value",)),
    ("destinationId-empty", IJ, {"destinationId": ""}, ("spec.destinationId", "at least 1 chars")),
    ("orgSchema-too-long", IJ, {"destinationId": "d", "orgSchema": "s" * 254}, ("spec.orgSchema",)),
    (
        "graceful-string",
        IJ,
        {"destinationId": "d", "cancelRequested": {"graceful": "yes"}},
        ("spec.cancelRequested.graceful", "boolean"),
    ),
    (
        "requestedAt-not-a-time",
        MEX,
        {"jobId": 1, "cancelRequested": {"requestedAt": "yesterday"}},
        ("spec.cancelRequested.requestedAt",),
    ),
    ("sourceConnectorId-negative", MEX, {"jobId": 1, "sourceConnectorId": -1}, ("spec.sourceConnectorId",)),
    ("targetConnectorId-zero", MEX, {"jobId": 1, "targetConnectorId": 0}, ("spec.targetConnectorId",)),
    ("modelIds-not-a-list", IJ, {"destinationId": "d", "modelIds": "orders"}, ("spec.modelIds", "array")),
    (
        "modelSamplePrimaryIds-values-not-lists",
        IJ,
        {"destinationId": "d", "modelSamplePrimaryIds": {"orders": "o-1"}},
        ("spec.modelSamplePrimaryIds.orders", "array"),
    ),
    (
        "modelSamplePrimaryIds-not-a-map",
        IJ,
        {"destinationId": "d", "modelSamplePrimaryIds": ["o-1"]},
        ("spec.modelSamplePrimaryIds",),
    ),
    (
        "template-containers-not-a-list",
        IJ,
        {"destinationId": "d", "template": {"spec": {"containers": "worker"}}},
        ("spec.template.spec.containers", "array"),
    ),
    (
        "template-without-containers",
        MEX,
        {"jobId": 1, "template": {"spec": {"restartPolicy": "Never"}}},
        ("spec.template.spec.containers: Required value",),
    ),
    (
        "template-container-without-name",
        MEX,
        {"jobId": 1, "template": {"spec": {"containers": [{"image": "w"}]}}},
        ("spec.template.spec.containers[0].name: Required value",),
    ),
    (
        "template-bad-quantity",
        IJ,
        {
            "destinationId": "d",
            "template": {"spec": {"containers": [{"name": "w", "resources": {"limits": {"cpu": "lots"}}}]}},
        },
        ("spec.template.spec.containers[0].resources.limits.cpu",),
    ),
    (
        "template-port-not-a-number",
        MEX,
        {
            "jobId": 1,
            "template": {"spec": {"containers": [{"name": "w", "ports": [{"containerPort": "http"}]}]}},
        },
        ("spec.template.spec.containers[0].ports[0].containerPort",),
    ),
    # time limits (issue 14)
    (
        "activeDeadlineSeconds-zero",
        IJ,
        {"destinationId": "d", "activeDeadlineSeconds": 0},
        ("spec.activeDeadlineSeconds", "greater than or equal to 1"),
    ),
    (
        "activeDeadlineSeconds-negative",
        MEX,
        {"jobId": 1, "activeDeadlineSeconds": -5},
        ("spec.activeDeadlineSeconds",),
    ),
    (
        "activeDeadlineSeconds-above-30-days",
        MEX,
        {"jobId": 1, "activeDeadlineSeconds": 2592001},
        ("spec.activeDeadlineSeconds", "less than or equal to 2592000"),
    ),
    (
        "activeDeadlineSeconds-string",
        IJ,
        {"destinationId": "d", "activeDeadlineSeconds": "5m"},
        ("spec.activeDeadlineSeconds", "integer"),
    ),
    (
        "activeDeadlineSeconds-fraction",
        MEX,
        {"jobId": 1, "activeDeadlineSeconds": 2.5},
        ("spec.activeDeadlineSeconds",),
    ),
    (
        "ttlSecondsAfterFinished-negative",
        IJ,
        {"destinationId": "d", "ttlSecondsAfterFinished": -1},
        ("spec.ttlSecondsAfterFinished", "greater than or equal to 0"),
    ),
    (
        "ttlSecondsAfterFinished-above-a-year",
        MEX,
        {"jobId": 1, "ttlSecondsAfterFinished": 31536001},
        ("spec.ttlSecondsAfterFinished", "less than or equal to 31536000"),
    ),
    (
        "ttlSecondsAfterFinished-string",
        MEX,
        {"jobId": 1, "ttlSecondsAfterFinished": "1h"},
        ("spec.ttlSecondsAfterFinished", "integer"),
    ),
    ("backoffLimit-negative", IJ, {"destinationId": "d", "backoffLimit": -1}, ("spec.backoffLimit",)),
    (
        "backoffLimit-above-10",
        MEX,
        {"jobId": 1, "backoffLimit": 11},
        ("spec.backoffLimit", "less than or equal to 10"),
    ),
    (
        "escalateAfterSeconds-zero",
        IJ,
        {"destinationId": "d", "cancelRequested": {"escalateAfterSeconds": 0}},
        ("spec.cancelRequested.escalateAfterSeconds", "greater than or equal to 1"),
    ),
    (
        "escalateAfterSeconds-above-a-day",
        MEX,
        {"jobId": 1, "cancelRequested": {"graceful": True, "escalateAfterSeconds": 86401}},
        ("spec.cancelRequested.escalateAfterSeconds", "less than or equal to 86400"),
    ),
    (
        "escalateAfterSeconds-string",
        MEX,
        {"jobId": 1, "cancelRequested": {"escalateAfterSeconds": "soon"}},
        ("spec.cancelRequested.escalateAfterSeconds", "integer"),
    ),
]
STRICT_CASES: list[tuple[str, str, Any, str]] = [
    # (id, kind, spec, the unknown field's path): rejected by the server's strict field validation.
    (
        "unknown-under-cancelRequested",
        IJ,
        {"destinationId": "d", "cancelRequested": {"force": True}},
        "spec.cancelRequested.force",
    ),
    ("unknown-in-spec", MEX, {"jobId": 1, "priority": 3}, "spec.priority"),
    (
        "unknown-in-template",
        IJ,
        {"destinationId": "d", "template": {"spec": {"containers": [{"name": "w", "imag": "x"}]}}},
        "spec.template.spec.containers[0].imag",
    ),
]


@pytest.mark.parametrize(
    ("kind", "spec", "fields"), [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES]
)
def test_invalid_manifest_is_rejected_naming_the_field(
    k: Kubectl, kind: str, spec: Any, fields: tuple[str, ...]
) -> None:
    done = k("create", "-f", "-", stdin=manifest(kind, "bad", spec))
    assert_rejected(done, *fields)
    assert "NotFound" in k("get", RESOURCE[kind], "bad").stderr


@pytest.mark.parametrize(
    ("kind", "spec", "field"), [c[1:] for c in STRICT_CASES], ids=[c[0] for c in STRICT_CASES]
)
def test_unknown_field_is_rejected_by_server_side_strict_validation(
    k: Kubectl, kind: str, spec: Any, field: str
) -> None:
    done = k("create", "--validate=strict", "-f", "-", stdin=manifest(kind, "bad", spec))
    assert_rejected(done, f'unknown field "{field}"')
    assert "strict decoding error" in done.stderr  # the API server's field validation, not kubectl's
    # Without strict validation the server accepts the object and prunes the unknown field.
    k.ok("create", "--validate=false", "-f", "-", stdin=manifest(kind, "pruned", spec))
    assert f'"{field.rsplit(".", 1)[1]}"' not in json.dumps(k.get(kind, "pruned")["spec"])


def test_name_longer_than_a_label_value_is_rejected(k: Kubectl) -> None:
    done = k("create", "-f", "-", stdin=manifest(MEX, LONG_NAME, {"jobId": 1}))
    assert_rejected(done, "metadata.name", "63")
    k.create(manifest(MEX, "x" * 63, {"jobId": 1}))


UPDATE_CASES: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    (
        "change-destinationId",
        IJ,
        {"spec": {"destinationId": "other"}},
        ("spec.destinationId", "destinationId is immutable"),
    ),
    ("change-jobId", MEX, {"spec": {"jobId": 168}}, ("spec.jobId", "jobId is immutable")),
    ("remove-jobId", MEX, {"spec": {"jobId": None}}, ("spec.jobId: Required value",)),
    ("remove-destinationId", IJ, {"spec": {"destinationId": None}}, ("spec.destinationId: Required value",)),
    (
        "bad-expectedStatus-in-patch",
        MEX,
        {"spec": {"cancelRequested": {"expectedStatus": "FAILED"}}},
        ("spec.cancelRequested.expectedStatus",),
    ),
]


@pytest.mark.parametrize(
    ("kind", "patch", "fields"), [c[1:] for c in UPDATE_CASES], ids=[c[0] for c in UPDATE_CASES]
)
def test_invalid_update_is_rejected_naming_the_field(
    k: Kubectl, kind: str, patch: dict[str, Any], fields: tuple[str, ...]
) -> None:
    k.create(manifest(kind, "job", BASE_SPEC[kind]))
    before = k.get(kind, "job")
    assert_rejected(k.patch(kind, "job", patch), *fields)
    assert k.get(kind, "job")["spec"] == before["spec"]


STATUS_CASES: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    (
        "missing-vendor-required-fields",
        IJ,
        {"status": "RUNNING"},
        ("status.id: Required value", "status.log_message"),
    ),
    ("bad-status-enum", MEX, {**FULL_STATUS[MEX], "status": "DONE"}, ("status.status", "CANCELLED")),
    (
        "bad-condition-status",
        MEX,
        {**FULL_STATUS[MEX], "conditions": [{**FULL_STATUS[IJ]["conditions"][0], "status": "Maybe"}]},
        ("status.conditions[0].status",),
    ),
    (
        "duplicate-condition-type",
        MEX,
        {**FULL_STATUS[MEX], "conditions": [FULL_STATUS[IJ]["conditions"][0]] * 2},
        ("status.conditions[1]", "Duplicate"),
    ),
    (
        "bad-condition-reason",
        IJ,
        {**FULL_STATUS[IJ], "conditions": [{**FULL_STATUS[IJ]["conditions"][0], "reason": "not camel case"}]},
        ("status.conditions[0].reason",),
    ),
    ("bad-timestamp", IJ, {**FULL_STATUS[IJ], "submitted_at": "yesterday"}, ("status.submitted_at",)),
    (
        "mismatched-partition-missing-counts",
        IJ,
        {
            **FULL_STATUS[IJ],
            "data_integrity_results": [
                {
                    "model_name": "orders",
                    "is_healthy": False,
                    "error_message": "",
                    "sampling_rate": 1.0,
                    "total_rows_compared": 1,
                    "total_rows_stale": 0,
                    "total_rows_pending": 0,
                    "total_rows_missing": 0,
                    "total_rows_incorrect": 0,
                    "total_rows_orphaned": 0,
                    "mismatched_partitions": [{"source_row_count": 1}],
                }
            ],
        },
        ("status.data_integrity_results[0].mismatched_partitions[0].destination_row_count: Required value",),
    ),
]


@pytest.mark.parametrize(
    ("kind", "status", "fields"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES]
)
def test_invalid_status_write_is_rejected_naming_the_field(
    k: Kubectl, kind: str, status: dict[str, Any], fields: tuple[str, ...]
) -> None:
    k.create(manifest(kind, "job", BASE_SPEC[kind]))
    assert_rejected(k.patch(kind, "job", {"status": status}, status=True), *fields)
    assert "status" not in k.get(kind, "job")


@pytest.mark.parametrize("kind", [IJ, MEX])
def test_full_vendor_status_write_is_accepted_and_shown_in_columns(k: Kubectl, kind: str) -> None:
    k.create(manifest(kind, "job", BASE_SPEC[kind]))
    done = k.patch(kind, "job", {"status": FULL_STATUS[kind]}, status=True)
    assert done.returncode == 0, done.stderr
    assert k.get(kind, "job")["status"] == FULL_STATUS[kind]
    # Later writes may be partial: the required fields are already there.
    assert k.patch(kind, "job", {"status": {"status": "RUNNING"}}, status=True).returncode == 0
    # A status sent through the main resource is ignored (status subresource).
    k.ok(
        "patch", RESOURCE[kind], "job", "--type", "merge", "-p", json.dumps({"status": {"status": "FAILED"}})
    )
    assert k.get(kind, "job")["status"]["status"] == "RUNNING"
    table = k.ok("get", RESOURCE[kind], "job")
    header, row = table.splitlines()
    if kind == IJ:
        assert header.split() == ["NAME", "STATUS", "DESTINATION", "AGE"]
        assert row.split()[:3] == ["job", "RUNNING", "dest-1"]
    else:
        assert header.split() == ["NAME", "STATUS", "JOB", "EXECUTION", "AGE"]
        assert row.split()[:4] == ["job", "RUNNING", "167", "42"]


@pytest.mark.parametrize("kind", [IJ, MEX])
def test_cancel_request_is_frozen_once_cancelled(k: Kubectl, kind: str) -> None:
    k.create(manifest(kind, "job", {**BASE_SPEC[kind], "cancelRequested": {}}))
    assert k.get(kind, "job")["spec"]["cancelRequested"] == {"graceful": False}  # the default
    # Before CANCELLED the request may be changed and withdrawn.
    assert k.patch(kind, "job", {"spec": {"cancelRequested": {"graceful": True}}}).returncode == 0
    assert k.patch(kind, "job", {"spec": {"cancelRequested": None}}).returncode == 0
    assert k.patch(kind, "job", {"spec": {"cancelRequested": {"expectedStatus": "QUEUED"}}}).returncode == 0
    cancelled = {**FULL_STATUS[kind], "status": "CANCELLED"}
    assert k.patch(kind, "job", {"status": cancelled}, status=True).returncode == 0

    removed = k.patch(kind, "job", {"spec": {"cancelRequested": None}})
    assert_rejected(removed, "spec.cancelRequested", "cannot be removed or changed once the job is CANCELLED")
    changed = k.patch(kind, "job", {"spec": {"cancelRequested": {"graceful": True}}})
    assert_rejected(changed, "spec.cancelRequested", "CANCELLED")
    assert k.get(kind, "job")["spec"]["cancelRequested"] == {"expectedStatus": "QUEUED", "graceful": False}

    # Everything else about a cancelled job that may change still can: labels, finalizers, status.
    k.ok("label", RESOURCE[kind], "job", "team=data")
    k.ok(
        "patch",
        RESOURCE[kind],
        "job",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":["datajobs.io/x"]}}',
    )
    k.ok("patch", RESOURCE[kind], "job", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    assert k.patch(kind, "job", {"status": {"observedGeneration": 5}}, status=True).returncode == 0


@pytest.mark.parametrize("kind", [IJ, MEX])
def test_the_spec_is_frozen_once_the_job_left_queued_except_cancel_requested(k: Kubectl, kind: str) -> None:
    template = {"spec": {"containers": [{"name": "worker", "image": "example.invalid/w:1"}]}}
    k.create(manifest(kind, "job", {**BASE_SPEC[kind], "template": template}))
    other = {"modelIds": ["orders"]} if kind == IJ else {"targetConnectorId": 9}
    assert k.patch(kind, "job", {"spec": other}).returncode == 0  # no status yet: editable
    assert k.patch(kind, "job", {"status": FULL_STATUS[kind]}, status=True).returncode == 0
    assert k.patch(kind, "job", {"spec": {"startDeadlineSeconds": 60}}).returncode == 0  # QUEUED: editable
    running = {**FULL_STATUS[kind], "status": "RUNNING"}
    assert k.patch(kind, "job", {"status": running}, status=True).returncode == 0

    image = {"spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "evil/w:2"}]}}}}
    assert_rejected(
        k.patch(kind, "job", image), "spec.template", "cannot be changed once the job has left QUEUED"
    )
    edit = {"modelIds": ["orders", "payments"]} if kind == IJ else {"targetConnectorId": 10}
    field = "spec.modelIds" if kind == IJ else "spec.targetConnectorId"
    assert_rejected(k.patch(kind, "job", {"spec": edit}), field, "(it is RUNNING)")
    added = {"orgSchema": "acme"} if kind == IJ else {"sourceConnectorId": 3}
    assert_rejected(k.patch(kind, "job", {"spec": added}), "cannot be changed", "left QUEUED")
    removed = {"startDeadlineSeconds": None}
    assert_rejected(k.patch(kind, "job", {"spec": removed}), "spec.startDeadlineSeconds", "left QUEUED")
    before = k.get(kind, "job")
    assert before["spec"]["template"] == template and before["spec"]["startDeadlineSeconds"] == 60

    # what stays allowed: a cancel request (and changing it), labels, status writes
    assert k.patch(kind, "job", {"spec": {"cancelRequested": {"expectedStatus": "RUNNING"}}}).returncode == 0
    assert k.patch(kind, "job", {"spec": {"cancelRequested": {"graceful": True}}}).returncode == 0
    k.ok("label", RESOURCE[kind], "job", "team=data")
    assert k.patch(kind, "job", {"status": {"observedGeneration": 7}}, status=True).returncode == 0
    assert k.get(kind, "job")["metadata"]["generation"] == before["metadata"]["generation"] + 2


def test_examples_are_accepted(k: Kubectl) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        dry = k("apply", "--dry-run=server", "--validate=strict", "-f", str(path))
        assert dry.returncode == 0, f"{path.name}: {dry.stderr}"
        assert "(server dry run)" in dry.stdout
    k.ok(
        "apply",
        "--validate=strict",
        "-f",
        str(EXAMPLES / "integrityjob.yaml"),
        "-f",
        str(EXAMPLES / "maskingexecution.yaml"),
    )
    k.ok("apply", "--validate=strict", "-f", str(EXAMPLES / "integrityjob-template.yaml"))
    ij = yaml.safe_load((EXAMPLES / "integrityjob-template.yaml").read_text("utf-8"))
    stored = k.get(IJ, ij["metadata"]["name"])
    assert stored["spec"]["samplingRate"] == ij["spec"]["samplingRate"]
    # The template survives pruning whole, labels included.
    assert stored["spec"]["template"]["metadata"] == ij["spec"]["template"]["metadata"]
    assert stored["spec"]["template"]["spec"]["containers"] == ij["spec"]["template"]["spec"]["containers"]


def cancel_patches() -> list[str]:
    """The `-p '…'` payloads of the `kubectl patch` commands documented in examples/cancel.md."""
    text = (EXAMPLES / "cancel.md").read_text("utf-8")
    return [part.split("'", 1)[0] for part in text.split("-p '")[1:]]


def test_documented_cancel_patches_work(k: Kubectl) -> None:
    patches = cancel_patches()
    assert len(patches) >= 4
    for i, payload in enumerate(patches):
        body = json.loads(payload)
        for kind in (IJ, MEX):
            name = f"c{i}-{kind.lower()}"
            k.create(manifest(kind, name, BASE_SPEC[kind]))
            done = k.patch(kind, name, body)
            assert done.returncode == 0, f"{payload}: {done.stderr}"
            cancel = body["spec"]["cancelRequested"]
            stored = k.get(kind, name)["spec"].get("cancelRequested")
            assert stored == (None if cancel is None else {"graceful": False, **cancel})


def test_get_datajobs_lists_both_kinds_with_their_columns(k: Kubectl) -> None:
    k.create(manifest(IJ, "ij-1", {"destinationId": "dest-9"}))
    k.create(manifest(MEX, "mex-1", {"jobId": 7}))
    out = k.ok("get", "datajobs")
    headers = [line.split() for line in out.splitlines() if line.startswith("NAME")]
    assert ["NAME", "STATUS", "DESTINATION", "AGE"] in headers
    assert ["NAME", "STATUS", "JOB", "EXECUTION", "AGE"] in headers
    assert "integrityjob.datajobs.io/ij-1" in out and "dest-9" in out
    assert "maskingexecution.datajobs.io/mex-1" in out
    short = k.ok("get", "ij,mex", "-o", "name").split()
    assert short == ["integrityjob.datajobs.io/ij-1", "maskingexecution.datajobs.io/mex-1"]


def test_kubectl_explain_shows_the_descriptions(k: Kubectl) -> None:
    def explain() -> str | None:
        done = k("explain", "integrityjob.spec.cancelRequested")
        return done.stdout if done.returncode == 0 else None

    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    out = wait_for(
        explain, timeout=60, message="kubectl explain never found integrityjob.spec.cancelRequested"
    )
    assert "its presence is the request" in out
    assert "expectedStatus" in out and "QUEUED, RUNNING" in out
    assert "graceful" in out and "grace period" in out
    status = k.ok("explain", "maskingexecution.status.rowsTotal")
    assert "-1 while the total row count is being calculated" in " ".join(status.split())
