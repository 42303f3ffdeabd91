"""The results as Markdown tables (stdout and RESULTS.md) and the issue's targets, met or not."""

from __future__ import annotations

from typing import Any

COMPONENTS = (
    "operator",
    "adapter",
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "bench",
)


def _lat(s: dict[str, Any] | None, keys: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms")) -> str:
    if not s:
        return "—"
    return " / ".join(f"{s[k]:.0f}" if s[k] >= 10 else f"{s[k]:.1f}" for k in keys)


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(target: str, value: float, met: bool, at: str) -> None:
        rows.append({"target": target, "value": value, "met": met, "measured_at": at})

    rounds = doc.get("rounds") or []
    for r in rounds:
        ratio = r["dispatch"]["throughput_ratio"]
        add("dispatch throughput ≥ 1.0x the Job controller", ratio, ratio >= 1.0, f"N={r['n']}")
    if rounds:
        r = min(rounds, key=lambda r: abs(r["n"] - 1000))
        imm = r["cancel"]["operator_immediate"]
        at = f"N={r['n']} running, sample {imm['sample']} at {imm['rate_per_s']:g}/s"
        p99 = imm["delete_requested"]["p99_ms"]
        add("cancel → deletion requested p99 < 250 ms", p99, p99 < 250, at)
        p99 = imm["cancelled"]["p99_ms"]
        add("cancel → CANCELLED p99 < 1 s (not graceful)", p99, p99 < 1000, at)
    levels = (doc.get("adapter") or {}).get("levels") or []
    at16 = next((lv for lv in levels if lv["clients"] == 16), None)
    if at16:
        at = f"16 clients, {at16['requests']} requests"
        add(
            "adapter throughput ≥ 0.8x raw patches",
            at16["throughput_ratio"],
            at16["throughput_ratio"] >= 0.8,
            at,
        )
        p99 = at16["adapter"]["p99_ms"]
        add("adapter p99 < 50 ms", p99, p99 < 50, at)
    scale = doc.get("scale")
    if scale:
        top = scale["levels"][-1]
        rss = max(top["idle"]["rss_mb"], top["burst"]["rss_peak_mb"])
        add("operator RSS < 150 MB (idle and burst peak)", rss, rss < 150, f"{top['jobs']} jobs")
        lo, hi = scale["compared"]
        r = scale["per_job_cpu_ratio"]
        add("per-job dispatch cost within 1.2x (CPU per job)", r, r <= 1.2, f"{hi} vs {lo} jobs")
    return rows


def render(doc: dict[str, Any]) -> str:
    m = doc["meta"]
    v = doc.get("versions") or {}
    mc = m["machine"]
    out = [
        f"# datajobs benchmark ({m['mode']}), {m['started']}",
        "",
        f"Machine: {mc['cores']} cores ({mc['cpu']}), {mc['memory_gib']} GiB; load average "
        f"{m['loadavg_start']} at start, {m['loadavg_end']} at end. Total {m['total_s']:.0f} s.",
        f"Versions: kube-apiserver {v.get('kube_apiserver')}, etcd {v.get('etcd')}, kwok {v.get('kwok')}, "
        f"Python {v.get('python')}, kopf {v.get('kopf')}, commit {v.get('commit')}.",
        "",
    ]
    rounds = doc.get("rounds") or []
    if rounds:
        out += [
            "## Dispatch: N jobs created at once → every worker pod Running",
            "",
            "| N | operator jobs/s | Job controller jobs/s | ratio | operator create→Running p50/p95/p99 ms "
            "| Job controller p50/p95/p99 ms |",
            "|---|---|---|---|---|---|",
        ]
        for r in rounds:
            d = r["dispatch"]
            out.append(
                f"| {r['n']} | {d['operator']['jobs_per_s']:.1f} | {d['job_controller']['jobs_per_s']:.1f} | "
                f"{d['throughput_ratio']:.2f}x | {_lat(d['operator']['create_to_running'])} | "
                f"{_lat(d['job_controller']['create_to_running'])} |"
            )
        out += [
            "",
            "Cost per job dispatched (CPU ms of every component but the load generator; API writes):",
            "",
            "| N | who | CPU ms total | controller | kube-apiserver | etcd | API writes | top writes/job |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rounds:
            for who, label in (("operator", "operator"), ("job_controller", "Job controller")):
                c = r["dispatch"]["cost_per_job"][who]
                top = ", ".join(f"{k} {v:g}" for k, v in list(c["api_writes_by_kind"].items())[:5])
                out.append(
                    f"| {r['n']} | {label} | {c['cpu_ms_total']:.1f} | {c['cpu_ms_controller']:.1f} | "
                    f"{c['cpu_ms_apiserver']:.1f} | {c['cpu_ms_etcd']:.1f} | {c['api_writes']:g} | {top} |"
                )
            out.append(
                f"| {r['n']} | ratio operator/Job controller | "
                f"{r['dispatch']['cpu_per_job_ratio']:.2f}x | | | | | |"
            )
        out += [
            "",
            "## Cancel latency with N running jobs (ms, p50 / p95 / p99)",
            "",
            "| N | who | sample | patch → deletion requested | patch → CANCELLED | pod gone → CANCELLED |",
            "|---|---|---|---|---|---|",
        ]
        for r in rounds:
            c = r["cancel"]
            for who, key in (
                ("operator, graceful: false", "operator_immediate"),
                ("operator, graceful: true", "operator_graceful"),
                ("Job controller, suspend: true", "job_controller_suspend"),
            ):
                row = c[key]
                out.append(
                    f"| {r['n']} | {who} | {row['sample']} | {_lat(row['delete_requested'])} | "
                    f"{_lat(row.get('cancelled'))} | {_lat(row.get('pod_gone_to_cancelled'))} |"
                )
            co, cp = c["cost_per_cancel"]["operator"], c["cost_per_cancel"]["job_controller"]
            out.append(
                f"| {r['n']} | cost per cancel: CPU ms / API writes | | operator {co['cpu_ms_total']:.1f} / "
                f"{co['api_writes']:g}; Job controller {cp['cpu_ms_total']:.1f} / {cp['api_writes']:g} | | |"
            )
            out.append(
                f"| {r['n']} | ratio operator/Job controller (deletion requested) | | p50 "
                f"{c['delete_requested_p50_ratio']:.2f}x, p99 {c['delete_requested_p99_ratio']:.2f}x | | |"
            )
        out.append("")
    adapter = doc.get("adapter")
    if adapter:
        out += [
            "## Adapter cancels vs raw merge patches (same load generator)",
            "",
            "| clients | requests | adapter req/s | adapter p50 / p99 ms | raw req/s | raw p50 / p99 ms | "
            "ratio adapter/raw | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for lv in adapter["levels"]:
            a, raw = lv["adapter"], lv["raw"]
            out.append(
                f"| {lv['clients']} | {lv['requests']} | {a['per_s']:.0f} | "
                f"{_lat(a, ('p50_ms', 'p99_ms'))} | {raw['per_s']:.0f} | {_lat(raw, ('p50_ms', 'p99_ms'))} | "
                f"{lv['throughput_ratio']:.2f}x | {a['errors'] + raw['errors']} |"
            )
        out.append("")
    scale = doc.get("scale")
    if scale:
        out += [
            "## Scale: the operator with L jobs present (all Running)",
            "",
            f"A fresh operator process; with no jobs: RSS {scale['no_jobs']['rss_mb']:.0f} MB, "
            f"CPU {scale['no_jobs']['cpu_percent']:.1f} %.",
            "",
            "| jobs | idle RSS MB | KiB/job | idle CPU % | burst | burst jobs/s | CPU ms/job | wall ms/job "
            "| burst peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in scale["levels"]:
            b = lv["burst"]
            out.append(
                f"| {lv['jobs']} | {lv['idle']['rss_mb']:.0f} | {lv['kib_per_job']:.1f} | "
                f"{lv['idle']['cpu_percent']:.1f} | "
                f"{b['jobs']} | {b['jobs_per_s']:.1f} | {b['cpu_ms_per_job']:.1f} | "
                f"{b['wall_ms_per_job']:.1f} | {b['rss_peak_mb']:.0f} |"
            )
        lo, hi = scale["compared"]
        out += [
            "",
            f"Per-job dispatch cost at {hi} vs {lo} jobs: CPU {scale['per_job_cpu_ratio']:.2f}x, "
            f"wall {scale['per_job_wall_ratio']:.2f}x.",
            "",
        ]
    phases = doc.get("phases") or {}
    if phases:
        out += [
            "## CPU seconds by component, per phase",
            "",
            "| phase | wall s | " + " | ".join(COMPONENTS) + " |",
            "|---|---|" + "---|" * len(COMPONENTS),
        ]
        for name, ph in phases.items():
            cpu = ph["cpu_seconds"]
            out.append(
                f"| {name} | {ph['wall_s']:.1f} | "
                + " | ".join(f"{cpu.get(c, 0):.1f}" for c in COMPONENTS)
                + " |"
            )
        out.append("")
    rows = doc.get("targets") or []
    if rows:
        out += ["## Targets", "", "| target | measured | where | met |", "|---|---|---|---|"]
        for t in rows:
            out.append(
                f"| {t['target']} | {t['value']:g} | {t['measured_at']} | {'yes' if t['met'] else 'NO'} |"
            )
        out.append("")
    for name, prof in (doc.get("profiles") or {}).items():
        if not prof:
            continue
        if "cumulative" in prof:  # a Go CPU profile (kube-apiserver): `go tool pprof -top -cum`
            out += [f"### Profile {name} (`{prof['profile']}`, by cumulative time)", "", "```"]
            out += [*prof["cumulative"], "```", ""]
            continue
        out += [f"### Profile {name}: {prof['samples']} samples (inclusive, top 12)", ""]
        out += [f"- {p['percent']:5.1f}%  {p['frame']}" for p in prof["inclusive"][:12]]
        out.append("")
    return "\n".join(out)
