"""`datajobs dev`: a local control plane with the CRDs, the operator and the adapter, in the foreground.

On a machine that can run a real node (Linux, root, the runtime installed) devnode.py runs it all in the
cluster; otherwise (or with `--node fake`) the pods run on kwok fake nodes and the operator and the
adapter run here as child processes."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from datajobs.localcluster.binaries import BinariesError
from datajobs.localcluster.cluster import ClusterError, LocalCluster
from datajobs.localcluster.crds import apply_crds, load_crd_files
from datajobs.localcluster.processes import Child, ignore_interrupts, interrupt_on_sigterm, spawn, stop_all
from datajobs.localcluster.rest import ApiError, Rest

log = logging.getLogger(__name__)

NOT_BUILT_EXIT = 2
"""`datajobs <command>` exits with 2 while that command is not built yet."""
ADAPTER_READY_TIMEOUT = 60.0
REPO_CRDS = Path(__file__).resolve().parents[2] / "crds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".datajobs/dev"),
        help="state directory: kubeconfig, api-key, logs, cluster data (default .datajobs/dev)",
    )
    parser.add_argument(
        "--adapter-port", type=int, default=8080, help="port of the HTTP adapter on 127.0.0.1 (default 8080)"
    )
    parser.add_argument("--nodes", type=int, default=3, help="number of kwok fake nodes (default 3)")
    parser.add_argument(
        "--node",
        choices=("auto", "real", "fake"),
        default="auto",
        help="real: a kubelet node running the operator, the adapter and the workers, with PostgreSQL; "
        "fake: kwok nodes, operator and adapter as local processes; auto (default): real where possible",
    )


class AlreadyRunning(RuntimeError):
    """Another `datajobs dev` holds the directory's lock."""


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Hold `<dir>/dev.pid` locked (flock) with our pid in it; raise AlreadyRunning if another holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dev.pid"
    # "a+" never truncates: a second instance must not erase the first one's pid.
    handle: IO[str] = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise AlreadyRunning(f"`datajobs dev` is already running on {directory} (pid {pid})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
        handle.truncate(0)
    finally:
        handle.close()


@dataclass(frozen=True)
class ApiKeyFiles:
    key: Path
    keys_document: Path


def write_api_key(directory: Path) -> ApiKeyFiles:
    """Reuse or generate `<dir>/api-key` (0600) and write `<dir>/api-keys.yaml` holding its SHA-256."""
    key_path, doc_path = directory / "api-key", directory / "api-keys.yaml"
    key = key_path.read_text().strip() if key_path.is_file() else ""
    if not key:
        key = secrets.token_urlsafe(32)
    write_private(key_path, key + "\n")
    document = {
        "keys": [{"name": "dev", "sha256": hashlib.sha256(key.encode()).hexdigest(), "namespaces": ["*"]}]
    }
    write_private(doc_path, yaml.safe_dump(document, sort_keys=False))
    return ApiKeyFiles(key_path, doc_path)


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def announce(kubeconfig: Path, url: str, keys: ApiKeyFiles, node: str) -> None:
    """The one `ready:` line (DESIGN.md "Local use"): kubeconfig, adapter URL, API key file, which node."""
    sys.stdout.write(f"ready: kubeconfig={kubeconfig} adapter={url} api-key={keys.key} {node}\n")
    sys.stdout.flush()


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs generated from the models, or (if the generator cannot be imported) the repo's crds/*.yaml."""
    try:
        from datajobs.crdgen import render_crds
    except ImportError as exc:
        log.warning("cannot import datajobs.crdgen (%s): applying %s/*.yaml instead", exc, REPO_CRDS)
        return load_crd_files(REPO_CRDS)
    return render_crds()


def patient_rest(cluster: LocalCluster) -> Rest:
    """The admin client with a long timeout: a CRD's server-side apply compiles its validation rules,
    which on a loaded machine takes longer than the usual 10 s, and an abandoned request starts over."""
    return Rest(cluster.rest.server, cluster.rest.pki, timeout=120.0)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_products(kubeconfig: Path, port: int, keys: ApiKeyFiles) -> list[Child]:
    """The operator and the adapter, as `python -m datajobs.cli` children writing to our stderr."""
    cli = [sys.executable, "-m", "datajobs.cli"]
    operator = [*cli, "run", "--kubeconfig", str(kubeconfig), "--state-namespace", "default"]
    adapter = [
        *cli,
        "adapter",
        "--kubeconfig",
        str(kubeconfig),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-keys-file",
        str(keys.keys_document),
    ]
    stderr = sys.stderr.fileno()
    return [spawn("operator", operator, stdout=stderr), spawn("adapter", adapter, stdout=stderr)]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_adapter(adapter: Child, url: str, timeout: float) -> bool:
    """True once `url`/readyz answers 2xx; False if the adapter exited. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while adapter.alive():
        if http_ok(url + "/readyz"):
            return True
        if time.monotonic() > deadline:
            raise TimeoutError(f"the adapter did not answer {url}/readyz within {timeout:.0f} s")
        time.sleep(0.2)
    return False


def _report_exit(child: Child) -> None:
    code = child.popen.returncode
    if code == NOT_BUILT_EXIT:
        log.warning("`%s` exited with %d (not built yet): the rest keeps running", child.name, code)
    else:
        log.error("%s exited with code %s: the rest keeps running", child.name, code)


def run(args: argparse.Namespace) -> int:
    from datajobs.localcluster.realnode import unavailable_reason

    reason = unavailable_reason() if args.node != "fake" else "--node fake"
    if reason is None:
        from datajobs import devnode

        return devnode.run(args)
    if args.node == "real":
        log.error("--node real: %s", reason)
        return 1
    return run_fake(args, reason)


def run_fake(args: argparse.Namespace, reason: str) -> int:
    """Kwok fake nodes; the operator and the adapter as child processes of this one."""
    directory: Path = args.dir.resolve()
    if not port_free(args.adapter_port):
        log.error("port %d on 127.0.0.1 is in use: pass --adapter-port", args.adapter_port)
        return 1
    # A fresh cluster per run: no stale objects, no etcd membership tied to old ports.
    shutil.rmtree(directory / "cluster", ignore_errors=True)
    cluster = LocalCluster(directory / "cluster", nodes=args.nodes)
    products: list[Child] = []
    try:
        cluster.start()
        names = apply_crds(patient_rest(cluster), crd_documents())
        log.info("CRDs established: %s", ", ".join(names) or "(none)")
        kubeconfig = directory / "kubeconfig"
        write_private(kubeconfig, cluster.kubeconfig.read_text())
        keys = write_api_key(directory)
        products = start_products(kubeconfig, args.adapter_port, keys)
        adapter = products[1]
        url = f"http://127.0.0.1:{args.adapter_port}"
        if not wait_adapter(adapter, url, ADAPTER_READY_TIMEOUT):
            _report_exit(adapter)
        announce(kubeconfig, url, keys, f"node=fake ({reason})")
        reported: set[str] = set()
        while True:
            time.sleep(0.5)
            for child in products:
                if not child.alive() and child.name not in reported:
                    reported.add(child.name)
                    _report_exit(child)
            if control_plane_died(cluster):
                return 1
    except KeyboardInterrupt:
        log.info("interrupted: stopping")
        return 0
    except (BinariesError, ClusterError, ApiError, TimeoutError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        ignore_interrupts()
        stop_all(products, timeout=10)
        cluster.stop()


def main(args: argparse.Namespace) -> int:
    interrupt_on_sigterm()
    try:
        with exclusive(args.dir.resolve()):
            return run(args)
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 1


def control_plane_died(cluster: LocalCluster) -> bool:
    """Log the first of the cluster's processes that exited, if one did (the dev loop then ends)."""
    dead = [c for c in cluster.children if not c.alive()]
    if dead:
        log.error("%s exited (code %s); see %s", dead[0].name, dead[0].popen.returncode, dead[0].log_path)
    return bool(dead)
