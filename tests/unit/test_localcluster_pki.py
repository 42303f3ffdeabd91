"""The local control plane's certificates: a CA, a serving cert for 127.0.0.1, an admin in system:masters."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from datajobs.localcluster.pki import create_pki


def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_certificates_chain_to_the_ca_with_the_right_names(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    assert pki.complete()
    verified = _openssl("verify", "-CAfile", str(pki.ca_cert), str(pki.server_cert), str(pki.admin_cert))
    assert verified.count(": OK") == 2
    assert "O = system:masters" in _openssl("x509", "-in", str(pki.admin_cert), "-noout", "-subject")
    sans = _openssl("x509", "-in", str(pki.server_cert), "-noout", "-ext", "subjectAltName")
    assert "IP Address:127.0.0.1" in sans and "DNS:localhost" in sans
    assert "TLS Web Client Authentication" in _openssl(
        "x509", "-in", str(pki.admin_cert), "-noout", "-ext", "extendedKeyUsage"
    )


def test_private_keys_are_private_and_the_sa_keys_match(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    for key in (pki.ca_key, pki.server_key, pki.admin_key, pki.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    derived = _openssl("pkey", "-in", str(pki.sa_key), "-pubout")
    assert derived == pki.sa_pub.read_text()


def test_a_complete_pki_is_reused(tmp_path: Path) -> None:
    first = create_pki(tmp_path / "pki")
    ca = first.ca_cert.read_bytes()
    second = create_pki(tmp_path / "pki")
    assert second.ca_cert.read_bytes() == ca
