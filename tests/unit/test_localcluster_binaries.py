"""Binary resolution order ($DATAJOBS_K8S_BIN, then the cache, then a build) and build failures."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from datajobs.localcluster.binaries import (
    CONTROL_PLANE,
    BinariesError,
    build,
    cache_dir,
    ensure_binaries,
    find_binaries,
    missing,
)


def _exe(directory: Path, name: str, body: str = "#!/bin/sh\nexit 0\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    tools = tmp_path / "tools"
    _exe(tools, "go")
    return {
        "DATAJOBS_CACHE": str(tmp_path / "cache"),
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": str(tmp_path),
    }


def test_cache_dir_is_versioned_under_datajobs_cache(env: dict[str, str], tmp_path: Path) -> None:
    assert cache_dir(env) == tmp_path / "cache" / "bin-k8s-v1.34.4"
    assert cache_dir({"HOME": "/nowhere"}).name == "bin-k8s-v1.34.4"


def test_env_dir_wins_over_the_cache_and_the_cache_fills_gaps(env: dict[str, str], tmp_path: Path) -> None:
    for name in CONTROL_PLANE:
        _exe(cache_dir(env), name)
    own = tmp_path / "envtest"
    _exe(own, "kube-apiserver")
    _exe(own, "etcd")
    env["DATAJOBS_K8S_BIN"] = str(own)
    found = find_binaries(env=env)
    assert found is not None
    assert found["kube-apiserver"] == (own / "kube-apiserver").resolve()
    assert found["etcd"] == (own / "etcd").resolve()
    assert found["kwok"] == (cache_dir(env) / "kwok").resolve()
    assert found.bin_dir == own.resolve()


def test_a_missing_or_non_executable_binary_is_missing(env: dict[str, str]) -> None:
    for name in CONTROL_PLANE[:-1]:
        _exe(cache_dir(env), name)
    (cache_dir(env) / "kwok").write_text("not executable")
    assert find_binaries(env=env) is None
    assert missing(env=env) == ["kwok"]


def test_found_binaries_need_no_build(env: dict[str, str]) -> None:
    for name in CONTROL_PLANE:
        _exe(cache_dir(env), name)
    failing = _exe(Path(env["HOME"]) / "s", "build.sh", "#!/bin/sh\nexit 1\n")
    build(env=env, script=failing)  # nothing missing: the script is never run
    assert ensure_binaries(env=env).bin_dir == cache_dir(env).resolve()


def test_a_failing_build_raises_with_the_log_tail(env: dict[str, str], tmp_path: Path) -> None:
    script = _exe(tmp_path / "s", "build.sh", '#!/bin/sh\necho "go: module lookup disabled ($2)"\nexit 7\n')
    with pytest.raises(BinariesError) as failed:
        build(env=env, script=script)
    message = str(failed.value)
    assert "exit 7" in message
    assert "go: module lookup disabled" in message


def test_without_go_the_error_says_what_to_install(env: dict[str, str]) -> None:
    env["PATH"] = "/nonexistent"
    with pytest.raises(BinariesError, match=r"Go >= 1\.24.*DATAJOBS_K8S_BIN"):
        ensure_binaries(env=env)


def test_a_build_that_produces_the_binaries_resolves_them(env: dict[str, str], tmp_path: Path) -> None:
    names = " ".join(CONTROL_PLANE)
    script = _exe(
        tmp_path / "s",
        "build.sh",
        f'#!/bin/sh\nmkdir -p "$1"\nfor n in {names}; do printf "#!/bin/sh\\n" > "$1/$n"; '
        'chmod +x "$1/$n"; done\n',
    )
    build(env=env, script=script)
    assert missing(env=env) == []


def test_the_shipped_build_script_knows_every_target() -> None:
    script = (Path(__file__).parents[2] / "operator/datajobs/localcluster/build-control-plane.sh").read_text()
    for target in ("etcd", "kwok", "kubernetes", "kubectl", "helm"):
        assert f"build_{target}()" in script
