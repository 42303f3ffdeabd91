"""The vendor view of a job: only the vendor resource's fields of `.status`, validated and dumped by alias."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from datajobs.models import KindInfo


class VendorShapeError(Exception):
    """The status does not hold a valid vendor resource (a contract violation by the status writer)."""


def vendor_view(kind: KindInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """Prequel's DataIntegrityJobResource or Delphix's Execution, from the object's status."""
    status = obj.get("status") or {}
    model = kind.vendor_model
    fields = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if alias in status:
            fields[alias] = status[alias]
    try:
        resource = model.model_validate(fields)
    except ValidationError as exc:
        metadata = obj.get("metadata") or {}
        raise VendorShapeError(
            f"{kind.kind} {metadata.get('namespace')}/{metadata.get('name')}: status is not a valid "
            f"{model.__name__}: {exc.error_count()} error(s), first: {exc.errors()[0]['loc']} "
            f"{exc.errors()[0]['msg']}"
        ) from None
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)
