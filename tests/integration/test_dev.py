"""`datajobs dev --node fake` gets ready, refuses a second instance on its dir, and Ctrl-C leaves nothing.

This is the fallback where no real node can run (kwok nodes, operator and adapter as processes);
tests/node/test_dev_node.py tests the real node."""

from __future__ import annotations

import hashlib
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from kubernetes import client, config

from devkit import Dev, free_port, ready_fields

FAKE = ("--node", "fake")


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    return tmp_path / "dev"


@pytest.fixture
def first(dev_dir: Path, tmp_path: Path) -> Iterator[Dev]:
    dev = Dev(dev_dir, free_port(), tmp_path, "first", FAKE)
    try:
        yield dev
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()
            dev.proc.wait()


def test_dev_gets_ready_refuses_a_second_instance_and_stops_everything_on_ctrl_c(
    first: Dev, dev_dir: Path, tmp_path: Path
) -> None:
    line = first.ready_line()
    fields = ready_fields(line)
    assert (fields["node"], fields["reason"]) == ("fake", "--node fake")
    kubeconfig = dev_dir.resolve() / "kubeconfig"
    assert fields["kubeconfig"] == str(kubeconfig)
    assert fields["adapter"].startswith("http://127.0.0.1:")
    assert sum(ln.startswith("ready:") for ln in first.output().splitlines()) == 1

    key_file = dev_dir / "api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    keys = yaml.safe_load((dev_dir / "api-keys.yaml").read_text())
    assert keys == {
        "keys": [{"name": "dev", "sha256": hashlib.sha256(key.encode()).hexdigest(), "namespaces": ["*"]}]
    }

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        assert client.VersionApi(api).get_code().minor == "34"
        crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        assert {c.metadata.name for c in crds} >= {
            "integrityjobs.datajobs.io",
            "maskingexecutions.datajobs.io",
        }
    finally:
        api.close()

    second = Dev(dev_dir, free_port(), tmp_path, "second", FAKE)
    assert second.proc.wait(timeout=60) != 0
    assert "already running" in second.errors()
    assert str(first.proc.pid) in second.errors()
    assert first.proc.poll() is None, "the second instance broke the first"
    assert (dev_dir / "kubeconfig").read_text() == kubeconfig.read_text()

    descendants = psutil.Process(first.proc.pid).children(recursive=True)
    names = {p.name() for p in descendants}
    assert {"etcd", "kube-apiserver", "kwok"} <= names, names
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(timeout=90) == 0, first.errors()
    survivors = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"left running after Ctrl-C: {survivors}"

    # The lock went with the process: the directory is usable again at once.
    third = Dev(dev_dir, free_port(), tmp_path, "third", FAKE)
    try:
        third.ready_line()
    finally:
        third.proc.send_signal(signal.SIGTERM)
        assert third.proc.wait(timeout=90) == 0, third.errors()
