"""A real Prometheus (built from its Go module) scraping processes on 127.0.0.1, and the chart's rules."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import Helm
from operatorkit import free_port

from datajobs.localcluster import prometheus
from helpers import wait_for


def tools() -> dict[str, Path]:
    try:
        return prometheus.ensure()
    except prometheus.PrometheusUnavailable as exc:
        pytest.fail(f"Prometheus is unavailable: {exc}", pytrace=False)


def chart_rules(helm: Helm, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The PrometheusRule the chart renders, as a Prometheus rules file ({"groups": [...]})."""
    docs = helm.template({"prometheusRule": {"enabled": True, **(values or {})}})
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return {"groups": rule["spec"]["groups"]}


class PrometheusProcess:
    """`prometheus` scraping `targets` (host:port on 127.0.0.1) and evaluating `rules`, both every second;
    every target's series carry `labels` (e.g. the namespace a ServiceMonitor's target would have)."""

    def __init__(
        self,
        workdir: Path,
        targets: dict[str, str],
        rules: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [address], "labels": labels or {}}]}
                for job, address in targets.items()
            ],
        }
        if rules is not None:
            (workdir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
            config["rule_files"] = [str(workdir / "rules.yaml")]
        (workdir / "prometheus.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [
                str(tools()["prometheus"]),
                f"--config.file={workdir / 'prometheus.yaml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)},
        )
        wait_for(self._ready, timeout=60, message=f"Prometheus ready; log: {self.log_path}")

    def _ready(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"prometheus exited {self.popen.returncode}:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def alerts(self, name: str, state: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.api("alerts")["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == state
        ]

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics page can produce: its samples, and its declared families (a labelled
    counter with no child yet has only its # TYPE line), histograms expanded to _bucket/_count/_sum."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
