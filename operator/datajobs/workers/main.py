"""`datajobs worker integrity|masking`: run a reference worker (docs/worker-protocol.md)."""

from __future__ import annotations

import argparse
import logging
import os

from datajobs.workers.podapi import PodApiError, from_environment
from datajobs.workers.progress import ProgressReporter
from datajobs.workers.protocol import EXIT_CONFIG, EXIT_FAILED, ConfigError, write_termination_message
from datajobs.workers.rules import DEFAULT_RULES_PATH
from datajobs.workers.stopping import StopWatcher

log = logging.getLogger(__name__)

RULES_ENV = "DATAJOBS_MASKING_RULES"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["integrity", "masking"], help="which reference worker to run")
    parser.add_argument(
        "--rules",
        default=None,
        help=f"masking rules file (default ${RULES_ENV} or {DEFAULT_RULES_PATH})",
    )


def main(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    try:
        api = from_environment(env)
    except PodApiError as exc:
        log.warning("no pod API (%s): progress is not reported and a stop is treated as graceful", exc)
        api = None
    watcher = StopWatcher(api)  # before any other thread: it blocks SIGTERM/SIGINT for all of them
    progress = ProgressReporter(api)
    try:
        if args.kind == "integrity":
            from datajobs.workers.integrity import IntegrityWorker, load_config

            return IntegrityWorker(load_config(env), watcher, progress).run()
        from datajobs.workers.masking import MaskingWorker
        from datajobs.workers.rules import load_rules

        rules = load_rules(args.rules or env.get(RULES_ENV) or DEFAULT_RULES_PATH)
        return MaskingWorker(env, rules, watcher, progress).run()
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        watcher.finished()
        progress.close()
        message: dict[str, object] = {"status": "FAILED", "message": f"bad configuration: {exc}"}
        if args.kind == "integrity":
            message = {
                "status": "FAILED",
                "log_message": f"bad configuration: {exc}",
                "data_integrity_results": [],
            }
        write_termination_message(message)
        return EXIT_CONFIG
    except Exception as exc:
        log.exception("the worker failed")
        watcher.finished()
        progress.close()
        write_termination_message({"status": "FAILED", "message": f"unexpected error: {exc!r}"})
        return EXIT_FAILED
