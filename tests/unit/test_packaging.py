"""The image and the chart agree with the project: versions, entrypoint, non-root user, build context."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_versions_agree() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((ROOT / "charts/datajobs-operator/Chart.yaml").read_text())
    assert re.search(r"^ARG VERSION=(\S+)$", dockerfile(), re.M).group(1) == version  # type: ignore[union-attr]
    assert chart["appVersion"] == version


def test_image_is_multi_stage_non_root_with_the_datajobs_entrypoint() -> None:
    text = dockerfile()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [name for _, name in stages] == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/datajobs /opt/datajobs" in runtime
    assert "pip install" not in runtime and "apt-get" not in runtime  # nothing is built or installed there
    user = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert user == ["65532:65532"]  # numeric, so runAsNonRoot can verify it
    assert re.search(r'^ENTRYPOINT \["datajobs"\]$', runtime, re.M)


def test_build_context_holds_only_the_package_sources() -> None:
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!operator/"} <= set(lines)
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.M)
    assert {p for c in copied for p in c.split()} == {"pyproject.toml", "operator"}
