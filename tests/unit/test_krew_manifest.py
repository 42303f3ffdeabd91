"""The krew manifest template (.krew.yaml) renders, as krew-release-bot would, to a manifest whose platforms,
archives and executable are the ones scripts/krew_archive.py builds."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import yaml

REPO = Path(__file__).resolve().parents[2]
TAG = "v0.1.0"


def archiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("krew_archive", REPO / "scripts/krew_archive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(template: str) -> dict:
    """krew-release-bot's two template functions: the tag, and a uri with its archive's sha256."""

    def uri_and_sha(match: re.Match[str]) -> str:
        return f"uri: {match.group(1)}\n      sha256: {'ab' * 32}"

    text = re.sub(
        r'\{\{ addURIAndSha "([^"]+)" \.TagName \}\}', uri_and_sha, template.replace("{{ .TagName }}", TAG)
    )
    assert "{{" not in text, text
    return yaml.safe_load(text)


def test_the_manifest_names_the_archives_the_script_builds() -> None:
    manifest = render((REPO / ".krew.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "datajobs"
    assert manifest["spec"]["version"] == TAG
    version = archiver().version()
    assert TAG == f"v{version}"
    platforms = {}
    for platform in manifest["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        platforms[(labels["os"], labels["arch"])] = platform
        assert platform["bin"] == "kubectl-datajobs"  # the launcher at the archive's root
        name = f"kubectl-datajobs_v{version}_{labels['os']}_{labels['arch']}.tar.gz"
        assert platform["uri"].endswith(f"/releases/download/{TAG}/{name}")
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
    assert set(platforms) == set(archiver().PLATFORMS)


def test_the_launcher_runs_the_plugins_main() -> None:
    launcher = archiver().LAUNCHER
    assert launcher.startswith("#!/bin/sh\n")
    assert "from datajobs.kubectlplugin.main import main" in launcher
    assert all(f"3.{minor}" in launcher for minor in (11, 12, 13))
