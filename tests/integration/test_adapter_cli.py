"""`datajobs adapter` as a process: keys from a Secret and a file, reloaded live; access log; clean stop."""

# ruff: noqa: F811 (pytest fixtures imported from test_adapter_contract are redefined as parameters)

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from test_adapter_contract import Player, delphix, http, player, wait_visible  # noqa: F401 (fixtures)

from datajobs.adapter.keys import hash_key
from helpers import wait_for

KEY_A, KEY_B = "cli-test-key-a-0001", "cli-test-key-b-0002"


def keys_doc(*keys: tuple[str, str]) -> str:
    return "keys:\n" + "".join(
        f'- {{name: {n}, sha256: "{hash_key(k)}", namespaces: ["*"]}}\n' for n, k in keys
    )


class AdapterProcess:
    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "datajobs.cli", "adapter", "--host", "127.0.0.1", "--port", "0", *argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = wait_for(self._listening, timeout=60, message=f"adapter did not start; log: {log_path}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _listening(self) -> str | None:
        if self.popen.poll() is not None:
            raise AssertionError(f"adapter exited with {self.popen.returncode}:\n{self.log()}")
        match = re.search(r"adapter listening on (http://127\.0\.0\.1:\d+)", self.log())
        return match.group(1) if match else None

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()
        return self.popen.returncode


@pytest.fixture
def processes() -> Iterator[list[AdapterProcess]]:
    started: list[AdapterProcess] = []
    yield started
    for proc in started:
        proc.stop()


def secret_body(name: str, text: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"keys.yaml": base64.b64encode(text.encode()).decode()}}


def test_keys_from_a_secret_are_watched(
    cluster: Any,
    namespace: str,
    kube_api: client.ApiClient,
    player: Player,
    processes: list[AdapterProcess],
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_secret(namespace, secret_body("adapter-keys", keys_doc(("a", KEY_A))))
    player.masking("mex-cli", 1401)
    proc = AdapterProcess(
        [
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--namespace",
            namespace,
            "--api-keys-secret",
            f"{namespace}/adapter-keys",
        ],
        tmp_path / "adapter.log",
    )
    processes.append(proc)
    url = proc.url + "/executions/1401"
    wait_visible(url, delphix(KEY_A))
    assert http("GET", url, delphix(KEY_B))[0] == 403

    # rotate: B replaces A
    core.replace_namespaced_secret(
        "adapter-keys", namespace, secret_body("adapter-keys", keys_doc(("b", KEY_B)))
    )
    wait_for(lambda: http("GET", url, delphix(KEY_B))[0] == 200, timeout=15, message="key B never accepted")
    assert http("GET", url, delphix(KEY_A))[0] == 403

    # a broken update keeps the last good keys
    core.replace_namespaced_secret("adapter-keys", namespace, secret_body("adapter-keys", "keys: [oops"))
    wait_for(lambda: "cannot reload Secret" in proc.log(), timeout=15, message="broken update not reported")
    assert http("GET", url, delphix(KEY_B))[0] == 200

    # deleting the Secret revokes its keys
    core.delete_namespaced_secret("adapter-keys", namespace)
    wait_for(lambda: http("GET", url, delphix(KEY_B))[0] == 403, timeout=15, message="keys not revoked")

    assert proc.stop() == 0
    log = proc.log()
    assert KEY_A not in log and KEY_B not in log
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert access and {"time", "method", "path", "route", "status", "duration_ms", "key"} <= set(access[0])
    assert {"a", "b"} <= {line["key"] for line in access}


def test_keys_file_is_reloaded_and_sigterm_stops_cleanly(
    cluster: Any, namespace: str, player: Player, processes: list[AdapterProcess], tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys.yaml"
    keys.write_text(keys_doc(("a", KEY_A)))
    player.masking("mex-file", 1402)
    proc = AdapterProcess(
        [
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--namespace",
            namespace,
            "--api-keys-file",
            str(keys),
            "--keys-poll-interval",
            "0.1",
        ],
        tmp_path / "adapter.log",
    )
    processes.append(proc)
    url = proc.url + "/executions/1402"
    wait_visible(url, {"X-API-KEY": KEY_A})
    assert http("GET", proc.url + "/readyz") == (200, {"status": "ready"})

    replacement = tmp_path / "api-keys.yaml.new"
    replacement.write_text(keys_doc(("b", KEY_B)))
    replacement.rename(keys)  # an atomic replace, as editors and config-map mounts do
    wait_for(
        lambda: http("GET", url, {"X-API-KEY": KEY_B})[0] == 200, timeout=15, message="file not reloaded"
    )
    assert http("GET", url, {"X-API-KEY": KEY_A})[0] == 403

    assert proc.stop() == 0
    assert "adapter stopped" in proc.log()
