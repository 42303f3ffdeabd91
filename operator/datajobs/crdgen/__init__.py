"""`datajobs crds`: generate the CustomResourceDefinitions from the pydantic models."""

from datajobs.crdgen.cli import add_arguments, main
from datajobs.crdgen.crd import render_crds

__all__ = ["add_arguments", "main", "render_crds"]
