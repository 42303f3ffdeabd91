"""`datajobs adapter` refuses to start without usable keys, before it touches any cluster."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from datajobs.adapter.keys import hash_key
from datajobs.cli import build_parser


def run(argv: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    parser, mains = build_parser(["adapter", *argv])
    args = parser.parse_args(["adapter", *argv])
    with caplog.at_level(logging.ERROR):
        code = mains["adapter"](args)
    return code, caplog.text


# a kubeconfig that does not exist: every case must fail on the keys, before loading it
NO_CLUSTER = ["--kubeconfig", "/nonexistent/kubeconfig", "--port", "0", "--host", "127.0.0.1"]


def test_no_keys_configured(caplog: pytest.LogCaptureFixture) -> None:
    code, log = run(NO_CLUSTER, caplog)
    assert code == 2
    assert "no API keys configured" in log


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("keys: []\n", "lists no key"),
        ("keys: [{name: a}]\n", "sha256"),
        (None, "No such file"),
    ],
)
def test_unusable_keys_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | None, message: str
) -> None:
    path = tmp_path / "keys.yaml"
    if content is not None:
        path.write_text(content)
    code, log = run([*NO_CLUSTER, "--api-keys-file", str(path)], caplog)
    assert code == 2
    assert message in log


def test_bad_secret_reference(caplog: pytest.LogCaptureFixture) -> None:
    code, log = run([*NO_CLUSTER, "--api-keys-secret", "just-a-name"], caplog)
    assert code == 2 and "NAMESPACE/NAME" in log


def test_keys_never_appear_in_startup_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        f'keys: [{{name: a, sha256: "{hash_key("s3cret")}", namespaces: ["*"], key: "s3cret"}}]\n'
    )
    code, log = run([*NO_CLUSTER, "--api-keys-file", str(path)], caplog)
    assert code == 2 and "unknown fields" in log and "s3cret" not in log
