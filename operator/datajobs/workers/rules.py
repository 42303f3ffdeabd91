"""The masking rules file (`rules.yaml` in the ConfigMap named by spec.maskingRulesConfigMap)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from datajobs.workers.protocol import ConfigError

DEFAULT_RULES_PATH = "/etc/datajobs/masking/rules.yaml"


class Algorithm(StrEnum):
    HASH = "hash"
    EMAIL = "email"
    PHONE = "phone"
    DATE_SHIFT = "date_shift"


TEXT_ALGORITHMS = frozenset({Algorithm.HASH, Algorithm.EMAIL, Algorithm.PHONE})


class _Rule(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ColumnRule(_Rule):
    column: str = Field(min_length=1)
    algorithm: Algorithm
    keep_domain: bool = Field(default=True, description="email: keep the domain (else mask its labels)")
    keep_leading_digits: int = Field(default=0, ge=0, le=15, description="phone: digits kept as they are")
    max_days: int = Field(default=365, ge=1, le=36500, description="date_shift: largest shift in days")


class TableRule(_Rule):
    table: str = Field(min_length=1, description="`schema.table` or `table` (schema public)")
    key_column: str | None = Field(
        default=None, description="unique, non-null, unmasked column to page by; default: the primary key"
    )
    columns: list[ColumnRule] = Field(min_length=1)

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0] if "." in self.table else "public"

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1] if "." in self.table else self.table

    @model_validator(mode="after")
    def _distinct_columns(self) -> TableRule:
        names = [c.column for c in self.columns]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.table}: a column is listed twice")
        return self


class MaskingRules(_Rule):
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="rows per transaction")
    lock_timeout_seconds: float = Field(
        default=10, gt=0, le=600, description="how long disabling or restoring an object may wait for locks"
    )
    tables: list[TableRule] = Field(min_length=1)


def load_rules(path: str | Path) -> MaskingRules:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the masking rules {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"the masking rules {path} are not valid YAML: {exc}") from exc
    try:
        return MaskingRules.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid masking rules {path}: {where}: {first['msg']}") from exc
