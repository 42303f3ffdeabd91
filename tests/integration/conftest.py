"""Integration tier: every test here runs against the real local control plane (see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


from faultkit import fault_cluster  # noqa: E402, F401  (fixture: a control plane the fault tests crash)
from operatorkit import jobs, run_operator  # noqa: E402, F401  (fixtures: `datajobs run` per test, job helpers)
