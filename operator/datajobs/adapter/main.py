"""`datajobs adapter`: serve the vendor endpoints until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from datajobs.adapter.server import Adapter, AdapterConfig, StartupError, run_until

logger = logging.getLogger("datajobs.adapter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, else $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve only jobs in this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--api-keys-file",
        type=Path,
        metavar="PATH",
        help="YAML keys document (keys: [{name, sha256, namespaces}]), reloaded when it changes",
    )
    parser.add_argument(
        "--api-keys-secret",
        metavar="NAMESPACE/NAME",
        help="Secret whose data key keys.yaml holds the keys document, watched for changes",
    )
    parser.add_argument(
        "--keys-poll-interval", type=float, default=1.0, help="seconds between checks of the file"
    )
    parser.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="largest request body accepted")
    parser.add_argument("--no-access-log", action="store_true", help="do not write JSON access log lines")


def config_from_args(args: argparse.Namespace) -> AdapterConfig:
    secret = None
    if args.api_keys_secret:
        namespace, sep, name = str(args.api_keys_secret).partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise StartupError(f"--api-keys-secret must be NAMESPACE/NAME, not {args.api_keys_secret!r}")
        secret = (namespace, name)
    return AdapterConfig(
        host=args.host,
        port=args.port,
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespaces=tuple(dict.fromkeys(args.namespace)),
        api_keys_file=args.api_keys_file,
        api_keys_secret=secret,
        keys_poll_interval=args.keys_poll_interval,
        max_body_bytes=args.max_body_bytes,
    )


def configure_access_log(enabled: bool) -> None:
    """Access log lines are bare JSON objects on stderr, one per request."""
    access = logging.getLogger("datajobs.adapter.access")
    access.propagate = False
    access.handlers.clear()
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
    else:
        access.setLevel(logging.CRITICAL + 1)


async def _serve(config: AdapterConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_until(Adapter(config), stop.wait)
    logger.info("adapter stopped")


def main(args: argparse.Namespace) -> int:
    configure_access_log(not args.no_access_log)
    try:
        asyncio.run(_serve(config_from_args(args)))
    except StartupError as exc:
        logger.error("adapter not started: %s", exc)
        return 2
    return 0
