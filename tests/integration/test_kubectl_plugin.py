"""`kubectl datajobs` on the real control plane, run as a user types it (kubectl finds the plugin on PATH)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import yaml
from operatorkit import GROUP, SPECS, VERSION, condition, integrity_spec, masking_spec
from pluginkit import Plugin, kubeconfig_in_namespace, table

from helpers import wait_for


@pytest.fixture
def plugin(cluster, namespace, crds, tmp_path) -> Plugin:
    return Plugin(kubeconfig_in_namespace(cluster.kubeconfig, namespace, tmp_path / "kubeconfig"))


def test_get_shows_both_kinds_with_queue_positions_progress_and_why(plugin, run_operator, jobs, namespace):
    run_operator(max_running=1)
    jobs.create("IntegrityJob", "first", integrity_spec())
    jobs.wait_pod_running("first")
    for name in ("second", "third"):
        jobs.create("IntegrityJob", name, integrity_spec())
        jobs.wait_status("IntegrityJob", name, "QUEUED")
    jobs.create("MaskingExecution", "mask", masking_spec())
    jobs.wait_pod_running("mask")
    jobs.report_progress("mask", {"rowsMasked": 250, "rowsTotal": 1000})
    wait_for(lambda: jobs.status("MaskingExecution", "mask").get("rowsMasked") == 250, timeout=15)

    rows = {r["NAME"]: r for r in table(plugin.ok("get").out)}
    assert set(rows) == {"ij/first", "ij/second", "ij/third", "mex/mask"}
    assert (rows["ij/first"]["STATUS"], rows["ij/first"]["QUEUE"], rows["ij/first"]["REASON"]) == (
        "RUNNING",
        "-",
        "Observed",
    )
    assert [rows[n]["QUEUE"] for n in ("ij/second", "ij/third")] == ["1", "2"]
    assert rows["ij/second"]["STATUS"] == "QUEUED" and rows["ij/first"]["PROGRESS"] == "0/1 models"
    assert rows["mex/mask"]["PROGRESS"] == "250/1,000 rows (25%)"

    listing = plugin.ok("get", "-o", "json").json()
    assert listing["kind"] == "List" and len(listing["items"]) == 4
    single = plugin.ok("get", "ij/second", "-o", "yaml").out
    assert yaml.safe_load(single)["status"]["status"] == "QUEUED"
    assert plugin.ok("get", "mex", "-o", "name").out == "maskingexecution.datajobs.io/mask\n"
    wide = table(plugin.ok("get", "-o", "wide").out)
    assert {r["ID"] for r in wide if r["NAME"] == "mex/mask"} == {"execution 1"}
    every = table(plugin.ok("get", "-A").out)
    assert {r["NAMESPACE"] for r in every if r["NAME"] == "ij/third"} == {namespace}
    # AGE as kubectl prints it (the jobs are seconds or minutes old here)
    assert all(re.fullmatch(r"\d+s|\d+m(\d+s)?", r["AGE"]) for r in rows.values()), rows
    jobs.custom.patch_namespaced_custom_object(
        GROUP, VERSION, jobs.ns, "integrityjobs", "third", {"metadata": {"labels": {"tier": "gold"}}}
    )
    assert [r["NAME"] for r in table(plugin.ok("get", "-l", "tier=gold").out)] == ["ij/third"]
    assert [r["NAME"] for r in table(plugin.ok("get", "ij", "-l", "tier!=gold").out)] == [
        "ij/first",
        "ij/second",
    ]

    missing = plugin("get", "ij/nope")
    assert missing.code == 1 and missing.out == ""
    assert 'Error from server (NotFound): integrityjobs.datajobs.io "nope" not found' in missing.err
    empty = plugin("get", "-n", "kube-system")
    assert (empty.code, empty.out, empty.err.strip()) == (
        0,
        "",
        "No resources found in kube-system namespace.",
    )
    bad = plugin("get", "pods/x")
    assert bad.code == 2 and 'doesn\'t have a resource type "pods"' in bad.err


def test_cancel_wait_reports_a_guard_mismatch_then_a_cancel(plugin, run_operator, jobs):
    run_operator()
    jobs.create("MaskingExecution", "mask", masking_spec())
    jobs.wait_pod_running("mask")

    rejected = plugin("cancel", "mex/mask", "--expected-status=QUEUED", "--wait", "--timeout=60s")
    assert rejected.code == 1, rejected
    assert rejected.err.strip() == (
        "error: maskingexecution.datajobs.io/mask cancel rejected (ExpectedStatusMismatch): "
        "expectedStatus is QUEUED but the job is RUNNING"
    )
    assert jobs.status("MaskingExecution", "mask")["status"] == "RUNNING"
    assert jobs.pod("mask") is not None

    done = plugin.ok("cancel", "mex/mask", "--expected-status", "RUNNING", "--wait", "-o", "json")
    final = done.json()
    assert final["status"]["status"] == "CANCELLED"
    assert condition(final["status"], "CancelRequest")["reason"] == "Accepted"
    assert jobs.pod("mask") is None  # CANCELLED only once the pod is gone
    assert final["spec"]["cancelRequested"]["expectedStatus"] == "RUNNING"

    again = plugin.ok("cancel", "mex/mask", "--wait")
    assert again.out == "maskingexecution.datajobs.io/mask already cancelled\n"


def test_cancel_selects_by_label_and_queue_dry_runs_and_waits(plugin, run_operator, jobs):
    run_operator(max_running=1)
    jobs.create("IntegrityJob", "runner", integrity_spec())
    jobs.wait_pod_running("runner")
    for name in ("q1", "q2"):
        jobs.create("IntegrityJob", name, integrity_spec())
        jobs.wait_status("IntegrityJob", name, "QUEUED")

    dry = plugin.ok("cancel", "--all-queued", "--dry-run")
    assert sorted(dry.out.splitlines()) == [
        f"integrityjob.datajobs.io/{n} cancel requested (dry run)" for n in ("q1", "q2")
    ]
    server_dry = plugin.ok("cancel", "ij/q1", "--dry-run=server")
    assert server_dry.out == "integrityjob.datajobs.io/q1 cancel requested (server dry run)\n"
    assert all("cancelRequested" not in jobs.get("IntegrityJob", n)["spec"] for n in ("q1", "q2"))

    queued = plugin.ok("cancel", "--all-queued", "--wait")
    assert sorted(queued.out.splitlines()) == [
        f"integrityjob.datajobs.io/{n} cancelled" for n in ("q1", "q2")
    ]
    for name in ("q1", "q2"):
        request = jobs.get("IntegrityJob", name)["spec"]["cancelRequested"]
        assert request["expectedStatus"] == "QUEUED"  # --all-queued never stops a job that started meanwhile
    assert jobs.status("IntegrityJob", "runner")["status"] == "RUNNING"

    jobs.custom.patch_namespaced_custom_object(
        "datajobs.io", "v1alpha1", jobs.ns, "integrityjobs", "runner", {"metadata": {"labels": {"team": "a"}}}
    )
    requested = plugin.ok("cancel", "ij", "-l", "team=a", "--graceful", "-o", "yaml")
    (patched,) = [yaml.safe_load(requested.out)]
    assert patched["metadata"]["name"] == "runner" and patched["kind"] == "IntegrityJob", requested.out
    assert patched["spec"]["cancelRequested"]["graceful"] is True
    assert jobs.get("IntegrityJob", "runner")["spec"]["cancelRequested"]["graceful"] is True
    waited = plugin.ok("wait", "ij/runner", "--for=cancelled", "--timeout=60s", "-o", "yaml")
    assert yaml.safe_load(waited.out)["status"]["status"] == "CANCELLED"

    nothing = plugin("cancel", "--all-queued")
    assert nothing.code == 0 and "No resources found" in nothing.err
    finished = plugin("cancel", "ij/q1", "--expected-status=RUNNING")
    assert finished.code == 0 and finished.out == "integrityjob.datajobs.io/q1 already cancelled\n"
    usage = plugin("cancel")
    assert usage.code == 2 and "name the jobs to cancel" in usage.err


def test_wait_meets_times_out_or_knows_it_never_will(plugin, run_operator, jobs):
    run_operator(max_running=1)
    jobs.create("MaskingExecution", "a", masking_spec())
    met = plugin.ok("wait", "mex/a", "--for=status=RUNNING", "--timeout=60s", "-o", "json")
    assert met.json()["status"]["status"] == "RUNNING"
    jobs.create("MaskingExecution", "b", masking_spec(8))
    jobs.wait_status("MaskingExecution", "b", "QUEUED")
    late = plugin("wait", "mex/b", "--for=status=RUNNING", "--timeout=2s")
    assert late.code == 1 and late.err.strip() == "error: timed out waiting for the condition on mex/b"

    jobs.wait_pod_running("a")
    jobs.finish_pod("a", 0, {"status": "SUCCEEDED", "rowsMasked": 5, "rowsTotal": 5})
    finished = plugin.ok("wait", "mex", "a", "--timeout=60s")  # --for=finished by default
    assert finished.out == "maskingexecution.datajobs.io/a condition met\n"
    never = plugin("wait", "mex/a", "--for=cancelled", "--timeout=60s")
    assert never.code == 1 and "finished SUCCEEDED; it will never be CANCELLED" in never.err
    rejected = plugin("cancel", "mex/a", "--wait")
    assert rejected.code == 1
    assert "cancel rejected (AlreadyFinished): the job already finished with status SUCCEEDED" in rejected.err


def test_describe_is_a_timeline_of_conditions_and_events(plugin, run_operator, jobs):
    run_operator()
    jobs.create("IntegrityJob", "story", integrity_spec())
    jobs.wait_pod_running("story")
    assert plugin("cancel", "ij/story", "--expected-status=QUEUED", "--wait").code == 1
    plugin.ok("cancel", "ij/story", "--wait")
    wait_for(lambda: "Cancelled" in jobs.event_reasons("story"), timeout=15, message="Cancelled event")

    jobs.create("MaskingExecution", "other", masking_spec())
    jobs.wait_status("MaskingExecution", "other", "RUNNING")
    both = plugin.ok("describe", "ij/story", "mex/other").out
    assert both.index("Name:") < both.index("story") < both.index("other"), both
    assert "Status:          CANCELLED" in both and "Status:          RUNNING" in both
    partly = plugin("describe", "ij/story", "ij/ghost", "mex/other")  # as kubectl: the rest still shown
    assert partly.code == 1 and "story" in partly.out and "other" in partly.out, partly
    assert 'Error from server (NotFound): integrityjobs.datajobs.io "ghost" not found' in partly.err
    assert plugin("describe", "mex", "-n", "kube-system").err.strip() == (
        "No resources found in kube-system namespace."
    )

    text = plugin.ok("describe", "ij/story").out
    assert "Status:          CANCELLED" in text
    assert "Worker pod:      story-worker (does not exist)" in text
    timeline = text.split("Timeline:\n", 1)[1]
    whats = [r["WHAT"] for r in table(timeline)]
    order = ["Warning CancelRejected", "Normal CancelAccepted", "Normal Cancelled"]
    positions = [next(i for i, w in enumerate(whats) if w == o) for o in order]
    assert positions == sorted(positions), whats
    assert "CancelRequest=True Accepted" in whats and "Finished=True Cancelled" in whats
    assert any(r["FROM"] == "pod event" and "Scheduled" in r["WHAT"] for r in table(timeline)), timeline


def test_contexts_kubeconfig_flags_and_exec_credential_plugins(
    plugin, cluster, namespace, run_operator, jobs, tmp_path
):
    run_operator()
    jobs.create("IntegrityJob", "seen", integrity_spec())
    jobs.wait_status("IntegrityJob", "seen", "RUNNING")
    doc = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    user = doc["users"][0]["user"]
    # An exec credential plugin handing out the admin's client certificate (cloud plugins hand out tokens).
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": _data(user, "client-certificate"),
            "clientKeyData": _data(user, "client-key"),
        },
    }
    helper = tmp_path / "credential-helper"
    helper.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(credential)}\nEOF\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    cluster_entry = doc["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry, {"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [
            {
                "name": "exec",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": str(helper),
                        "interactiveMode": "Never",
                    }
                },
            },
        ],
        "contexts": [
            {"name": "dead", "context": {"cluster": "nowhere", "user": "exec"}},
            {
                "name": "test",
                "context": {"cluster": cluster_entry["name"], "user": "exec", "namespace": namespace},
            },
        ],
        "current-context": "dead",
    }
    path = tmp_path / "two-contexts"
    path.write_text(yaml.safe_dump(config))
    via_exec = plugin.ok("get", "--kubeconfig", str(path), "--context", "test", "-o", "name")
    assert via_exec.out == "integrityjob.datajobs.io/seen\n"
    before = plugin.ok("--kubeconfig", str(path), "--context", "test", "get", "-o", "name")
    assert before.out == via_exec.out
    dead = plugin("get", "--kubeconfig", str(path), "--request-timeout=5s")
    assert dead.code == 1 and dead.out == "" and "error: cannot reach https://127.0.0.1:1" in dead.err
    unknown = plugin("get", "--kubeconfig", str(path), "--context", "missing")
    assert unknown.code == 1 and "cannot load the kubeconfig" in unknown.err


def _data(user: dict, key: str) -> str:
    if f"{key}-data" in user:
        import base64

        return base64.b64decode(user[f"{key}-data"]).decode()
    return Path(user[key]).read_text()


@pytest.mark.parametrize("kind", ["IntegrityJob", "MaskingExecution"])
def test_logs_say_why_there_is_none_or_show_the_kept_copy(plugin, run_operator, jobs, kind, namespace):
    run_operator(max_running=1)
    jobs.create(kind, "blocker", SPECS[kind]())
    jobs.wait_pod_running("blocker")
    jobs.create(kind, "later", SPECS[kind]())
    jobs.wait_status(kind, "later", "QUEUED")
    short = "ij" if kind == "IntegrityJob" else "mex"
    queued = plugin("logs", f"{short}/later")
    assert queued.code == 1
    assert queued.err.strip() == f"error: {short}/later is QUEUED: its worker pod does not exist yet"
    plugin.ok("cancel", f"{short}/blocker", "--wait")
    # A kwok pod has no log to give: the copy the operator kept before deleting it says so.
    kept = plugin.ok("logs", f"{short}/blocker")
    assert kept.out.startswith("(the log of container worker was not available: "), kept.out
    jobs.core.delete_namespaced_config_map("blocker-worker-log", namespace)
    gone = plugin("logs", f"{short}/blocker")
    assert gone.code == 1
    assert gone.err.strip() == (
        f"error: the worker pod of {short}/blocker is gone and no kept copy of its log exists"
    )
