"""The chart's alerts and dashboard: promtool on the rules, and a real Prometheus scraping the operator and
the adapter on 127.0.0.1 that fires the stuck-cancel alert and evaluates every dashboard query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from chartkit import REPO_ROOT, Helm, HelmError, helm_exe
from operatorkit import integrity_spec, masking_spec
from promkit import PrometheusProcess, chart_rules, exported_names, tools
from test_adapter_cli import AdapterProcess

from datajobs.adapter.keys import hash_key
from helpers import wait_for

ALERT_TESTS = REPO_ROOT / "tests/fixtures/alerts/alerts-test.yaml"
DASHBOARD = REPO_ROOT / "charts/datajobs-operator/dashboards/datajobs-operator.json"
ALERTS = {
    "DatajobsCancelStuck",
    "DatajobsQueueStalled",
    "DatajobsReconcileErrors",
    "DatajobsAdapter5xx",
    "DatajobsNoLeader",
}


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm for `helm template` (no cluster)."""
    return Helm(helm_exe(), tmp_path_factory.mktemp("helm"))


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools()["promtool"]), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_pass_promtool_check_and_every_alert_has_a_unit_test(chart: Helm, tmp_path):
    rules = chart_rules(chart)
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} == ALERTS
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0 and "SUCCESS: 5 rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    tested_alerts = {
        t["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    assert tested_alerts == ALERTS
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    tested = promtool("test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # The unit tests can fail: with a longer `for`, the 5m case must no longer fire.
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(chart_rules(chart, {"cancelStuckFor": "10m"})))
    broken = promtool("test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert broken.returncode != 0 and "DatajobsCancelStuck" in broken.stdout + broken.stderr


def test_alerts_and_dashboard_are_off_by_default_and_labelled_when_on(chart: Helm):
    kinds = {d["kind"] for d in chart.template()}
    assert "PrometheusRule" not in kinds
    assert not [d for d in chart.template() if d["metadata"]["name"].endswith("-dashboard")]
    docs = chart.template({"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Jobs"}}})
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "dj-datajobs-operator-dashboard"
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Jobs"}
    assert json.loads(cm["data"]["datajobs-operator.json"]) == json.loads(DASHBOARD.read_text())
    with pytest.raises(HelmError, match=r"needs operator\.metrics\.enabled"):
        chart.template({"prometheusRule": {"enabled": True}, "operator": {"metrics": {"enabled": False}}})


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def as_prometheus_sees_it(expr: str, namespace: str) -> str:
    """Grafana's variables as Grafana would expand them (one namespace chosen, a rate window of 4 scrapes)."""
    return expr.replace("$__rate_interval", "4s").replace("$namespace", namespace)


def namespace_choices(prom: PrometheusProcess) -> list[str]:
    """What the dashboard's namespace variable offers: its own `label_values(metric, label)` query."""
    board = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "namespace"]
    metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"]).groups()
    return list(prom.api(f"label/{label}/values", **{"match[]": metric}))


def test_prometheus_scrapes_the_operator_fires_the_stuck_cancel_alert_and_evaluates_the_dashboard(
    run_operator, jobs, namespace, cluster, chart: Helm, tmp_path
):
    operator = run_operator()
    key = "k-" + "x" * 30
    keys = tmp_path / "keys.yaml"
    keys.write_text(f'keys:\n- {{name: t, sha256: "{hash_key(key)}", namespaces: ["*"]}}\n')
    adapter = AdapterProcess(
        ["--kubeconfig", cluster.kubeconfig, "--namespace", namespace, "--api-keys-file", str(keys)],
        tmp_path / "adapter.log",
    )
    try:
        adapter_address = adapter.url.removeprefix("http://")
        rules = chart_rules(chart, {"cancelStuckFor": "0s"})
        prom = PrometheusProcess(
            tmp_path / "prometheus",
            {"operator": f"127.0.0.1:{operator.metrics_port}", "adapter": adapter_address},
            rules,
            labels={"namespace": "datajobs-system"},  # the release's, as a ServiceMonitor's targets have
        )
        try:
            wait_for(prom.targets_up, timeout=30, message="both targets scraped")
            _stuck_cancel_fires_then_resolves(prom, jobs)
            _dashboard_queries_are_valid_over_live_names(prom, operator.metrics(), adapter, key, jobs)
        finally:
            prom.stop()
    finally:
        adapter.stop()


def _stuck_cancel_fires_then_resolves(prom: PrometheusProcess, jobs) -> None:
    jobs.create("IntegrityJob", "held", integrity_spec())
    jobs.wait_pod_running("held")
    # A finalizer holds the pod Terminating after the operator deletes it (kwok honours finalizers).
    jobs.core.patch_namespaced_pod(
        "held-worker", jobs.ns, {"metadata": {"finalizers": ["datajobs.io/test-hold"]}}
    )
    jobs.cancel("IntegrityJob", "held")
    wait_for(
        lambda: jobs.pod("held").metadata.deletion_timestamp is not None,
        timeout=15,
        message="the operator deleted the worker pod",
    )
    firing = wait_for(
        lambda: prom.alerts("DatajobsCancelStuck", "firing"), timeout=60, message="DatajobsCancelStuck firing"
    )
    assert [a["labels"]["kind"] for a in firing] == ["IntegrityJob"]
    assert firing[0]["value"] in ("1", "1e+00")
    assert jobs.status("IntegrityJob", "held")["status"] == "RUNNING"  # still not CANCELLED: the pod exists
    jobs.core.patch_namespaced_pod("held-worker", jobs.ns, {"metadata": {"finalizers": None}})
    jobs.wait_status("IntegrityJob", "held", "CANCELLED", timeout=30)
    wait_for(
        lambda: (
            not prom.alerts("DatajobsCancelStuck", "firing")
            and not prom.alerts("DatajobsCancelStuck", "pending")
        ),
        timeout=30,
        message="DatajobsCancelStuck resolved once CANCELLED",
    )


# Panels with nothing to draw in this run: no 5xx, no reconcile error.
NO_DATA_HERE = {"Adapter 5xx ratio", "Reconcile errors per second"}


def _dashboard_queries_are_valid_over_live_names(
    prom, operator_metrics: str, adapter, key: str, jobs
) -> None:
    # Traffic for the adapter's panels: a cancel through the adapter, and a call without a key.
    jobs.create("MaskingExecution", "via-adapter", masking_spec())
    execution = jobs.wait_status("MaskingExecution", "via-adapter", "RUNNING")["executionId"]
    for headers, code in (({"Authorization": f"Bearer {key}"}, 200), ({}, 403)):
        request = urllib.request.Request(
            f"{adapter.url}/executions/{execution}/cancel", method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == code
        except urllib.error.HTTPError as exc:
            assert exc.code == code, exc
    jobs.wait_status("MaskingExecution", "via-adapter", "CANCELLED", timeout=30)
    with urllib.request.urlopen(f"{adapter.url}/metrics", timeout=10) as r:
        live = exported_names(operator_metrics) | exported_names(r.read().decode())
    queries = dashboard_queries()
    assert len(queries) >= 12
    # the namespace variable offers the operator's release namespace, and choosing it draws the panels
    (ns,) = wait_for(lambda: namespace_choices(prom), timeout=30, message="the namespace variable")
    assert ns == "datajobs-system"
    for title, expr in queries:
        names = set(re.findall(r"\b(datajobs_[a-z_]+)\b", expr))
        assert names, f"{title}: no datajobs metric in {expr}"
        assert names <= live, f"{title}: {sorted(names - live)} not exported by the operator or the adapter"
        prom.query(as_prometheus_sees_it(expr, ns))  # valid PromQL that evaluates (api() asserts success)
    # Every other panel draws something, the way Grafana would ask for it.
    missing: list[str] = []

    def all_drawn() -> bool:
        missing[:] = [
            t for t, e in queries if t not in NO_DATA_HERE and not prom.query(as_prometheus_sees_it(e, ns))
        ]
        return not missing

    try:
        wait_for(all_drawn, timeout=30, interval=1, message="every panel has data")
    except AssertionError as exc:
        raise AssertionError(f"dashboard panels without data: {sorted(set(missing))}") from exc
    assert not prom.query(as_prometheus_sees_it(dict(queries)["Adapter 5xx ratio"], ns))  # no 5xx
    # and the variable really filters: another namespace draws nothing
    drawn_elsewhere = [t for t, e in queries if prom.query(as_prometheus_sees_it(e, "another-namespace"))]
    assert drawn_elsewhere == []
