"""The operator checks worker results without pydantic: the generated schema agrees with the model."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from pydantic import ValidationError

from datajobs.core.result_schema import SCHEMA
from datajobs.core.resultcheck import ShapeError, conform
from datajobs.models import DataIntegrityResultResource

GOOD = {
    "model_name": "orders",
    "is_healthy": False,
    "error_message": "",
    "sampling_rate": 1,
    "total_rows_compared": 10,
    "total_rows_stale": 0,
    "total_rows_pending": 0,
    "total_rows_missing": 1,
    "total_rows_incorrect": 0,
    "total_rows_orphaned": 0,
}
PARTITION = {
    "source_row_count": 5,
    "destination_row_count": 4,
    "last_modified_lower_bound_epoch": 0,
    "last_modified_upper_bound_epoch": 3600,
}


def variant(**changes):
    doc = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is ...:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


VALID = [
    GOOD,
    variant(mismatched_partitions=[PARTITION, PARTITION]),
    variant(mismatched_partitions=None),
    variant(mismatched_partitions=[]),
    variant(sampling_rate=0.25),
]
INVALID = [
    (variant(model_name=...), "model_name: field required"),
    (variant(total_rows_missing="1x"), "total_rows_missing: expected integer, got string"),
    (variant(is_healthy="maybe"), "is_healthy: expected boolean, got string"),
    (variant(surprise=1), "surprise: extra inputs are not permitted"),
    (variant(mismatched_partitions=[{**PARTITION, "source_row_count": None}]), "mismatched_partitions.0"),
    (variant(mismatched_partitions=[{"source_row_count": 1}]), "destination_row_count: field required"),
    (variant(mismatched_partitions="all"), "mismatched_partitions"),
    ([], "expected object, got array"),
]


@pytest.mark.parametrize("doc", VALID)
def test_what_the_model_accepts_is_accepted_and_dumped_the_same(doc):
    expected = DataIntegrityResultResource.model_validate(doc).model_dump(exclude_none=True)
    assert conform(doc, SCHEMA) == expected


@pytest.mark.parametrize(("doc", "why"), INVALID)
def test_what_the_model_refuses_is_refused_with_where_and_why(doc, why):
    with pytest.raises(ValidationError):
        DataIntegrityResultResource.model_validate(doc)
    with pytest.raises(ShapeError) as caught:
        conform(doc, SCHEMA)
    assert why in str(caught.value)


def test_json_types_are_strict_where_the_model_would_coerce():
    for doc in (variant(is_healthy=1), variant(total_rows_stale=True), variant(total_rows_stale=2.0)):
        with pytest.raises(ShapeError):
            conform(doc, SCHEMA)


def test_the_operator_process_never_loads_pydantic():
    code = (
        "import sys; from datajobs import cli; cli.keep_out_unused_imports('run');"
        "import datajobs.controller.main;"
        "loaded = sorted(m for m in sys.modules if m.startswith('pydantic'));"
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
