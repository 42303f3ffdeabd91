"""`datajobs cluster`: build/find the control plane's binaries, or run only the local control plane."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from datajobs.localcluster.binaries import ALL, BinariesError, ensure_binaries
from datajobs.localcluster.cluster import ClusterError, LocalCluster
from datajobs.localcluster.processes import ignore_interrupts, interrupt_on_sigterm

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ensure-binaries",
        action="store_true",
        help="find or build etcd, kube-apiserver, controller-manager, scheduler, kwok, kubectl and helm, "
        "log their directory and exit",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".datajobs/cluster"),
        help="state directory: kubeconfig, logs, PKI, etcd data (default .datajobs/cluster)",
    )
    parser.add_argument("--nodes", type=int, default=3, help="number of kwok fake nodes (default 3)")


def main(args: argparse.Namespace) -> int:
    if args.ensure_binaries:
        try:
            binaries = ensure_binaries(ALL)
        except BinariesError as exc:
            log.error("%s", exc)
            return 1
        log.info("control plane binaries in %s", binaries.bin_dir)
        return 0
    interrupt_on_sigterm()
    cluster = LocalCluster(args.dir, nodes=args.nodes)
    try:
        cluster.start()
        sys.stdout.write(f"ready: kubeconfig={cluster.kubeconfig} server={cluster.server}\n")
        sys.stdout.flush()
        while True:
            time.sleep(1.0)
            dead = [c for c in cluster.children if not c.alive()]
            if dead:
                log.error(
                    "%s exited unexpectedly (code %s); see %s",
                    dead[0].name,
                    dead[0].popen.returncode,
                    dead[0].log_path,
                )
                return 1
    except KeyboardInterrupt:
        log.info("interrupted: stopping")
        return 0
    except (BinariesError, ClusterError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        ignore_interrupts()
        cluster.stop()
