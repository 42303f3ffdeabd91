"""The `kubectl-datajobs` console script: kubectl's flags and habits, five commands, errors on stderr.

Exit codes: 0 done; 1 an error, a rejected cancel, a wait that timed out or can never be met; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from urllib3.exceptions import HTTPError as TransportError

from datajobs.kubectlplugin import cancel as cancelling
from datajobs.kubectlplugin import describe as describing
from datajobs.kubectlplugin.api import Api, ApiException, CommandError, Connection, connect
from datajobs.kubectlplugin.logs import show_logs
from datajobs.kubectlplugin.present import get_table, queue_positions, ref_of
from datajobs.kubectlplugin.refs import Ref, Selection, UsageError, parse_targets
from datajobs.kubectlplugin.waiting import Never, WaitTimeout, parse_for, parse_timeout, wait_until
from datajobs.models import KINDS

PROG = "kubectl datajobs"
OUTPUTS = ("json", "yaml", "wide", "name")


class Failures:
    """Counts what went wrong while a command carried on (kubectl reports each and exits 1 at the end)."""

    def __init__(self) -> None:
        self.count = 0

    def error(self, text: str) -> None:
        self.count += 1
        print(text, file=sys.stderr)  # noqa: T201 (the plugin's stderr is its user interface)


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _connection_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("-n", "--namespace", default=default, help="the namespace (default: the context's)")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")
    parser.add_argument(
        "--request-timeout", default=default, help="how long to wait for one API server response (e.g. 30s)"
    )


def _selection_flags(parser: argparse.ArgumentParser, all_queued: bool = False) -> None:
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    parser.add_argument("-l", "--selector", help="label selector (e.g. team=a,tier!=batch)")
    if all_queued:
        parser.add_argument(
            "--all-queued",
            action="store_true",
            help="every QUEUED job (implies --expected-status=QUEUED: a job that starts meanwhile goes on)",
        )


def _output_flag(parser: argparse.ArgumentParser, choices: Sequence[str] = OUTPUTS) -> None:
    parser.add_argument("-o", "--output", choices=choices, help="output format: " + "|".join(choices))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="IntegrityJobs and MaskingExecutions (datajobs.io), as kubectl would show them.",
        epilog="Jobs are named KIND/NAME (ij/NAME, mex/NAME) or KIND NAME...; -n, --context and "
        "--kubeconfig work as in kubectl.",
    )
    _connection_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = sub.add_parser("get", help="list jobs of both kinds: status, queue position, progress, age, why")
    get.add_argument(
        "targets", nargs="*", metavar="KIND[/NAME]", help="ij, mex, ij/NAME, ... (default: both)"
    )
    _selection_flags(get)
    _output_flag(get)

    cancel = sub.add_parser("cancel", help="request a cancel (spec.cancelRequested), optionally wait for it")
    cancel.add_argument("targets", nargs="*", metavar="KIND/NAME", help="the jobs (or a KIND with -l)")
    _selection_flags(cancel, all_queued=True)
    cancel.add_argument("--expected-status", choices=("QUEUED", "RUNNING"), help="cancel only in this status")
    cancel.add_argument("--graceful", action="store_true", help="give the worker its full grace period")
    cancel.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        default="none",
        choices=("none", "client", "server"),
        help="client: only print; server: the API server validates the patch without storing it",
    )
    cancel.add_argument(
        "--wait", action="store_true", help="return once each job is CANCELLED or its cancel was rejected"
    )
    cancel.add_argument("--timeout", default="2m", help="with --wait: how long (default 2m)")
    _output_flag(cancel, ("json", "yaml", "name"))

    wait = sub.add_parser("wait", help="wait for jobs to finish, reach a status or a condition")
    wait.add_argument("targets", nargs="*", metavar="KIND/NAME", help="the jobs (or a KIND with -l)")
    _selection_flags(wait)
    wait.add_argument(
        "--for",
        dest="for_",
        default="finished",
        metavar="CONDITION",
        help="finished (default), cancelled, status=STATUS, condition=TYPE[=True|False]",
    )
    wait.add_argument("--timeout", default="30s", help="how long (default 30s, like kubectl wait)")
    _output_flag(wait, ("json", "yaml", "name"))

    describe = sub.add_parser("describe", help="a job's facts and a timeline of its conditions and Events")
    describe.add_argument("targets", nargs="+", metavar="KIND/NAME")

    logs = sub.add_parser(
        "logs", help="the worker's log: live from its pod, or the kept copy once it is gone"
    )
    logs.add_argument("targets", nargs="+", metavar="KIND/NAME", help="one job")
    logs.add_argument("-c", "--container", help="the container (default: the only one)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming while the worker runs")
    logs.add_argument("--tail", type=int, default=None, help="only the last N lines")
    logs.add_argument("--timestamps", action="store_true", help="prefix each line with its time")

    for child in (get, cancel, wait, describe, logs):
        _connection_flags(child, suppress=True)
    return parser


# -- helpers -----------------------------------------------------------------------------------------------


def api_error(exc: ApiException) -> str:
    """kubectl's wording: `Error from server (NotFound): ...`."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    reason = body.get("reason") or exc.reason or exc.status
    message = body.get("message") or str(exc.body or exc.reason)
    return f"Error from server ({reason}): {message}"


def resolve(api: Api, selection: Selection, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The jobs the positional arguments and -l/-A name (named jobs are read one by one)."""
    every = getattr(args, "all_namespaces", False)
    if selection.names:
        if every:
            raise UsageError("a job cannot be named across all namespaces (-A): use -n")
        if getattr(args, "selector", None):
            raise UsageError("name jobs or select them with -l, not both")
        return [api.get_job(Ref(api.namespace, kind.kind, name)) for kind, name in selection.names]
    namespace = None if every else api.namespace
    return [job for kind in selection.kinds for job in api.list_jobs(kind, namespace, args.selector)]


def positions(api: Api, jobs: list[dict[str, Any]], listed_everything: bool, fails: Failures) -> dict:
    """Queue places, counted over every job the operator serves (all namespaces) when the user may list
    them; otherwise over this namespace's, with a warning."""
    if not any((j.get("status") or {}).get("status") == "QUEUED" for j in jobs):
        return {}
    if listed_everything:
        return queue_positions(jobs)
    kinds = {j["kind"] for j in jobs}
    try:
        pool = [j for k in KINDS if k.kind in kinds for j in api.list_jobs(k, None)]
    except ApiException as exc:
        if exc.status != 403:
            raise
        namespaces = sorted({ref_of(j).namespace for j in jobs})
        pool = [j for k in KINDS if k.kind in kinds for ns in namespaces for j in api.list_jobs(k, ns)]
        print(  # noqa: T201
            f"warning: queue positions count only jobs in {', '.join(namespaces)} (jobs in other namespaces "
            "may be ahead): you may not list jobs cluster-wide",
            file=sys.stderr,
        )
    return queue_positions(pool)


def print_objects(objs: list[dict[str, Any]], fmt: str, single: bool) -> None:
    if fmt == "name":
        out("".join(f"{ref_of(o).qualified}\n" for o in objs))
        return
    doc: dict[str, Any] = (
        objs[0] if single and len(objs) == 1 else {"apiVersion": "v1", "kind": "List", "items": objs}
    )
    out(json.dumps(doc, indent=4) + "\n" if fmt == "json" else yaml.safe_dump(doc, sort_keys=False))


def named_jobs(api: Api, selection: Selection, fails: Failures) -> list[dict[str, Any]]:
    """The named jobs that exist, as kubectl reads them: each one missing is an error, the rest go on."""
    jobs = []
    for kind, name in selection.names:
        try:
            jobs.append(api.get_job(Ref(api.namespace, kind.kind, name)))
        except ApiException as exc:
            if exc.status != 404:
                raise
            fails.error(api_error(exc))
    return jobs


def no_resources(api: Api, args: argparse.Namespace) -> None:
    where = "" if getattr(args, "all_namespaces", False) else f" in {api.namespace} namespace"
    print(f"No resources found{where}.", file=sys.stderr)  # noqa: T201


# -- commands ----------------------------------------------------------------------------------------------


def cmd_get(api: Api, args: argparse.Namespace, fails: Failures) -> None:
    selection = parse_targets(args.targets)
    if selection.names:
        if args.all_namespaces or args.selector:
            resolve(api, selection, args)  # raises the usage error
        jobs = named_jobs(api, selection, fails)
    else:
        jobs = resolve(api, selection, args)
    if args.output in ("json", "yaml", "name"):
        print_objects(jobs, args.output, single=len(selection.names) == 1)
        return
    if not jobs:
        if not fails.count:
            no_resources(api, args)
        return
    everything = args.all_namespaces and not args.selector and len(selection.kinds) == len(KINDS)
    places = positions(api, jobs, everything, fails)
    out(
        get_table(
            jobs, places, datetime.now(UTC), wide=args.output == "wide", with_namespace=args.all_namespaces
        )
    )


def _targets(api: Api, args: argparse.Namespace, what: str) -> list[Ref]:
    selection = parse_targets(args.targets)
    if not selection.names and not args.selector and not getattr(args, "all_queued", False):
        raise UsageError(f"name the jobs to {what} (KIND/NAME...), or select them with -l or --all-queued")
    jobs = resolve(api, selection, args)
    if getattr(args, "all_queued", False):
        jobs = [j for j in jobs if (j.get("status") or {}).get("status") == "QUEUED"]
    return [ref_of(j) for j in jobs]


def cmd_cancel(api: Api, args: argparse.Namespace, fails: Failures) -> None:
    if args.all_queued and args.expected_status not in (None, "QUEUED"):
        raise UsageError("--all-queued cancels QUEUED jobs only: it cannot take --expected-status=RUNNING")
    expected = "QUEUED" if args.all_queued else args.expected_status
    if args.wait and args.dry_run != "none":
        raise UsageError("--wait cannot be combined with --dry-run (nothing would happen to wait for)")
    refs = _targets(api, args, "cancel")
    if not refs:
        no_resources(api, args)
        return
    shown: list[dict[str, Any]] = []

    def report(outcome: cancelling.Outcome) -> None:
        if not outcome.ok:
            fails.error(f"error: {outcome.line}")
        elif args.output:
            shown.append(outcome.job)
        else:
            out(outcome.line + "\n")

    cancelling.cancel(
        api, refs, expected, args.graceful, args.dry_run, args.wait, parse_timeout(args.timeout), report
    )
    if args.output and shown:
        print_objects(shown, args.output, single=len(refs) == 1)


def cmd_wait(api: Api, args: argparse.Namespace, fails: Failures) -> None:
    condition = parse_for(args.for_)
    refs = _targets(api, args, "wait for")
    if not refs:
        raise CommandError("no matching resources found")
    deadline = time.monotonic() + parse_timeout(args.timeout)
    finals = []
    for ref in refs:
        try:
            finals.append(wait_until(api, ref, lambda job: job if condition.check(job) else None, deadline))
            if not args.output:
                out(f"{ref.qualified} condition met\n")
        except (WaitTimeout, Never) as exc:
            fails.error(f"error: {exc}")
    if args.output and finals:
        print_objects(finals, args.output, single=len(refs) == 1)


def cmd_describe(api: Api, args: argparse.Namespace, fails: Failures) -> None:
    selection = parse_targets(args.targets)
    if selection.names:
        jobs = named_jobs(api, selection, fails)
    else:
        jobs = resolve(api, selection, argparse.Namespace(all_namespaces=False, selector=None))
        if not jobs:
            no_resources(api, args)
    for i, job in enumerate(jobs):
        ref = ref_of(job)
        pod_name = describing.worker_pod_name(job)
        pod = api.get_pod(ref.namespace, pod_name)
        job_events = api.events_of(ref.namespace, job["kind"], ref.name, job["metadata"]["uid"])
        pod_events = api.events_of(ref.namespace, "Pod", pod_name)
        place = positions(api, [job], False, fails).get(ref)
        text = describing.render(job, pod, job_events, pod_events, place, datetime.now(UTC))
        out(("\n\n" if i else "") + text)


def cmd_logs(api: Api, args: argparse.Namespace, fails: Failures) -> None:
    selection = parse_targets(args.targets)
    if len(selection.names) != 1:
        raise UsageError("logs takes one job: KIND/NAME")
    ((kind, name),) = selection.names

    def write(chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    show_logs(
        api,
        Ref(api.namespace, kind.kind, name),
        args.container,
        args.follow,
        args.tail,
        args.timestamps,
        write,
    )


COMMANDS: dict[str, Callable[[Api, argparse.Namespace, Failures], None]] = {
    "get": cmd_get,
    "cancel": cmd_cancel,
    "wait": cmd_wait,
    "describe": cmd_describe,
    "logs": cmd_logs,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fails = Failures()
    api: Api | None = None
    try:
        timeout = parse_timeout(args.request_timeout) if args.request_timeout else None
        api = connect(Connection(args.kubeconfig, args.context, args.namespace, timeout))
        COMMANDS[args.command](api, args, fails)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except ApiException as exc:
        fails.error(api_error(exc))
    except CommandError as exc:
        fails.error(f"error: {exc}")
    except TransportError as exc:
        server = api.server if api is not None else "the API server"
        fails.error(f"error: cannot reach {server}: {exc}")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if api is not None:
            api.close()
    return 1 if fails.count else 0


if __name__ == "__main__":
    sys.exit(main())
