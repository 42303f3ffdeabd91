"""`datajobs dev` building blocks: the directory lock, the generated API key, the CRD source."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest
import yaml

from datajobs.dev import AlreadyRunning, crd_documents, exclusive, port_free, write_api_key


def test_a_second_holder_of_the_directory_is_refused_without_erasing_the_pid(tmp_path: Path) -> None:
    with exclusive(tmp_path):
        assert (tmp_path / "dev.pid").read_text().strip() == str(os.getpid())
        with pytest.raises(AlreadyRunning, match=f"already running on {tmp_path} \\(pid {os.getpid()}\\)"):
            with exclusive(tmp_path):
                pass
        assert (tmp_path / "dev.pid").read_text().strip() == str(os.getpid())
    with exclusive(tmp_path):  # released on exit
        pass


def test_api_key_is_private_hashed_and_stable_across_restarts(tmp_path: Path) -> None:
    files = write_api_key(tmp_path)
    key = files.key.read_text().strip()
    assert len(key) >= 32
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    doc = yaml.safe_load(files.keys_document.read_text())
    assert doc == {
        "keys": [{"name": "dev", "sha256": hashlib.sha256(key.encode()).hexdigest(), "namespaces": ["*"]}]
    }
    assert write_api_key(tmp_path).key.read_text().strip() == key


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_free(sock.getsockname()[1])


def test_crds_come_from_the_models() -> None:
    names = {c["metadata"]["name"] for c in crd_documents()}
    assert {"integrityjobs.datajobs.io", "maskingexecutions.datajobs.io"} <= names
