"""Certificates and keys for the local control plane, made with the `openssl` command-line tool."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ADMIN_USER = "datajobs-admin"
ADMIN_GROUP = "system:masters"

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = {sans}
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""

SERVER_SANS = (
    "IP:127.0.0.1",
    "DNS:localhost",
    "IP:10.0.0.1",
    "IP:198.18.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


class PkiError(RuntimeError):
    """The certificates could not be created."""


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the control plane needs."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    def complete(self) -> bool:
        files = (self.ca_cert, self.ca_key, self.server_cert, self.server_key, self.admin_cert)
        return all(p.is_file() for p in (*files, self.admin_key, self.sa_key, self.sa_pub))


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise PkiError("the `openssl` command is needed to create the local control plane's certificates")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path.name,
        cwd=path.parent,
    )
    path.chmod(0o600)


def _signed_cert(pki: Pki, key: Path, cert: Path, subject: str, section: str) -> None:
    csr = cert.with_suffix(".csr")
    _openssl(
        "req",
        "-new",
        "-config",
        "openssl.cnf",
        "-key",
        key.name,
        "-subj",
        subject,
        "-out",
        csr.name,
        cwd=pki.directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        csr.name,
        "-CA",
        pki.ca_cert.name,
        "-CAkey",
        pki.ca_key.name,
        "-set_serial",
        str(secrets.randbits(63)),
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        "openssl.cnf",
        "-extensions",
        section,
        "-out",
        cert.name,
        cwd=pki.directory,
    )
    csr.unlink()


def create_pki(directory: Path) -> Pki:
    """Create (or reuse, if complete) a CA, the API server's serving cert, an admin client cert, SA keys."""
    pki = Pki(directory)
    config = _OPENSSL_CONFIG.format(sans=",".join(SERVER_SANS))
    cnf = directory / "openssl.cnf"
    if pki.complete() and cnf.exists() and cnf.read_text() == config:
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    cnf.write_text(config)
    _new_key(pki.ca_key)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-config",
        "openssl.cnf",
        "-key",
        pki.ca_key.name,
        "-subj",
        "/CN=datajobs-local-ca",
        "-days",
        "3650",
        "-sha256",
        "-extensions",
        "ca",
        "-out",
        pki.ca_cert.name,
        cwd=directory,
    )
    _new_key(pki.server_key)
    _signed_cert(pki, pki.server_key, pki.server_cert, "/CN=kube-apiserver", "server")
    _new_key(pki.admin_key)
    _signed_cert(pki, pki.admin_key, pki.admin_cert, f"/O={ADMIN_GROUP}/CN={ADMIN_USER}", "client")
    _new_key(pki.sa_key)
    _openssl("pkey", "-in", pki.sa_key.name, "-pubout", "-out", pki.sa_pub.name, cwd=directory)
    return pki
