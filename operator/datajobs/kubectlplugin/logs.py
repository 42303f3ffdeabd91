"""`kubectl datajobs logs`: the worker's log, live from its pod; once the pod is gone, the kept copy.

The kept copy is the tail of each container's log that the operator saves before it deletes a worker pod
(datajobs.core.keptlogs): the ConfigMap `<job>-worker-log`, labelled `datajobs.io/kept-logs=true` and
`datajobs.io/job=<job>`, owned by the job, one data key per container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datajobs.core.keptlogs import LABEL_KEPT_LOGS
from datajobs.core.workerpod import LABEL_JOB, short_name
from datajobs.kubectlplugin.api import Api, ApiException, CommandError
from datajobs.kubectlplugin.refs import Ref


def kept_copy(api: Api, ref: Ref, uid: str, container: str | None) -> str | None:
    """The saved log of the job's worker (the named container, or the only one), or None."""
    selector = f"{LABEL_KEPT_LOGS}=true,{LABEL_JOB}={short_name(ref.name)}"
    for cm in api.list_configmaps(ref.namespace, selector):
        owners = (cm.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("uid") == uid for o in owners):
            continue  # a copy from an earlier job of the same name, or of the other kind
        data: dict[str, str] = cm.get("data") or {}
        if container is not None:
            if container in data:
                return data[container]
            raise CommandError(
                f"the kept log of {ref.short} has no container {container!r} ({', '.join(data)})"
            )
        if len(data) == 1:
            return next(iter(data.values()))
        if data:
            raise CommandError(
                f"the kept log of {ref.short} has several containers; name one with -c: {', '.join(data)}"
            )
    return None


def owned_by(pod: dict[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in (pod.get("metadata") or {}).get("ownerReferences") or [])


def show_logs(
    api: Api,
    ref: Ref,
    container: str | None,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    write: Callable[[bytes], None],
) -> str:
    """Write the log; returns where it came from ("pod" or "kept copy"). Raises CommandError when neither."""
    job = api.get_job(ref)
    uid = job["metadata"]["uid"]
    pod_name = f"{ref.name}-worker"
    pod = api.get_pod(ref.namespace, pod_name)
    failure = ""
    if pod is not None and owned_by(pod, uid):
        try:
            for chunk in api.pod_log(ref.namespace, pod_name, container, follow, tail, timestamps):
                write(chunk)
            return "pod"
        except ApiException as exc:
            failure = f": the API server could not read the pod's log ({exc.status} {exc.reason})"
    kept = kept_copy(api, ref, uid, container)
    if kept is not None:
        lines = kept.splitlines(keepends=True)
        if tail is not None and tail >= 0:
            lines = lines[-tail:] if tail else []
        write("".join(lines).encode())
        return "kept copy"
    status = (job.get("status") or {}).get("status")
    if pod is None and status in (None, "QUEUED"):
        raise CommandError(f"{ref.short} is {status or 'new'}: its worker pod does not exist yet")
    if pod is None or not owned_by(pod, uid):
        raise CommandError(f"the worker pod of {ref.short} is gone and no kept copy of its log exists")
    raise CommandError(f"no log for {ref.short}{failure}, and no kept copy exists")
