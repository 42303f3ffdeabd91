"""The two custom resource kinds and their names, shared by the generator, operator and adapter."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from datajobs.models.integrity import DataIntegrityJobResource, IntegrityJobSpec, IntegrityJobStatus
from datajobs.models.masking import Execution, MaskingExecutionSpec, MaskingExecutionStatus

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
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    vendor_model: type[BaseModel]
    worker: str  # the reference worker's name: `datajobs worker <worker>`
    description: str

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
    spec_model=IntegrityJobSpec,
    status_model=IntegrityJobStatus,
    vendor_model=DataIntegrityJobResource,
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
    spec_model=MaskingExecutionSpec,
    status_model=MaskingExecutionStatus,
    vendor_model=Execution,
    worker="masking",
    description=(
        "MaskingExecution is one execution of a masking job, run in a worker pod (modelled on the Delphix "
        "Masking Engine's executions)."
    ),
)

KINDS: tuple[KindInfo, ...] = (INTEGRITY_JOB, MASKING_EXECUTION)
