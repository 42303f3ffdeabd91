"""The two custom resource kinds and their names, shared by the generator, operator and adapter.

The pydantic models are named here, not imported: the operator reads only the names, and a process that
never touches a model (the operator) never loads pydantic (~17 MB of memory)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

GROUP = "datajobs.io"
VERSION = "v1alpha1"
CATEGORY = "datajobs"


@dataclass(frozen=True)
class KindInfo:
    """Names and models of one custom resource kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    models: tuple[str, str, str]  # spec, status and vendor model: "module:Class"
    worker: str  # the reference worker's name: `datajobs worker <worker>`
    description: str

    @property
    def spec_model(self) -> type[BaseModel]:
        return _model(self.models[0])

    @property
    def status_model(self) -> type[BaseModel]:
        return _model(self.models[1])

    @property
    def vendor_model(self) -> type[BaseModel]:
        return _model(self.models[2])

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"


INTEGRITY_JOB = KindInfo(
    kind="IntegrityJob",
    plural="integrityjobs",
    singular="integrityjob",
    short_names=("ij",),
    models=(
        "datajobs.models.integrity:IntegrityJobSpec",
        "datajobs.models.integrity:IntegrityJobStatus",
        "datajobs.models.integrity:DataIntegrityJobResource",
    ),
    worker="integrity",
    description=(
        "IntegrityJob is a data-integrity check of a destination against its source, run in a worker pod "
        "(modelled on Prequel's data integrity jobs)."
    ),
)

MASKING_EXECUTION = KindInfo(
    kind="MaskingExecution",
    plural="maskingexecutions",
    singular="maskingexecution",
    short_names=("mex",),
    models=(
        "datajobs.models.masking:MaskingExecutionSpec",
        "datajobs.models.masking:MaskingExecutionStatus",
        "datajobs.models.masking:Execution",
    ),
    worker="masking",
    description=(
        "MaskingExecution is one execution of a masking job, run in a worker pod (modelled on the Delphix "
        "Masking Engine's executions)."
    ),
)

KINDS: tuple[KindInfo, ...] = (INTEGRITY_JOB, MASKING_EXECUTION)


def _model(where: str) -> type[BaseModel]:
    module, _, name = where.partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model
