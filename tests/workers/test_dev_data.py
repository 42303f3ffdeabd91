"""The data `datajobs dev` seeds works with the reference workers as `make dev` configures them.

The workers get exactly the environment the dev Secret `datajobs-dev-postgres` gives a pod (its keys via
envFrom) and the dev masking rules: the integrity worker reports exactly devdata.INJECTED, and the
masking worker masks every row and restores what it disabled."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path

import psycopg
import yaml
from maskingdb import trigger_states

from datajobs import devdata, devnode


def secret_env(dsn: str) -> dict[str, str]:
    secret = devnode.connection_secret(dsn, secrets.token_urlsafe(24))
    assert secret["metadata"] == {"name": "datajobs-dev-postgres", "namespace": "default"}
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_integrity_worker_reports_exactly_the_injected_differences(postgres, run_worker) -> None:
    dsn = devdata.seed(postgres.dsn, customers=10, orders=5, database=f"dev_{secrets.token_hex(4)}")
    env = {
        **secret_env(dsn),
        "DATAJOBS_KIND": "IntegrityJob",
        "DATAJOBS_ORG_SCHEMA": devdata.ORG_SCHEMA,
        "DATAJOBS_MODEL_IDS": json.dumps([devdata.MODEL]),
        "DATAJOBS_SAMPLING_RATE": "1.0",
    }
    run = run_worker("integrity", env)
    assert run.wait() == 0, run.log()
    report = run.report()
    assert report["status"] == "SUCCEEDED", report
    (result,) = report["data_integrity_results"]
    assert result["model_name"] == "orders" and result["is_healthy"] is False
    assert {k: result[k] for k in devdata.INJECTED} == devdata.INJECTED
    assert result["mismatched_partitions"], "the injected rows change some daily partitions"


def test_the_masking_worker_masks_the_dev_crm_with_the_dev_rules(
    postgres, run_worker, tmp_path: Path
) -> None:
    dsn = devdata.seed(postgres.dsn, customers=600, orders=300, database=f"dev_{secrets.token_hex(4)}")
    before = trigger_states(dsn)
    assert before == {"customers_readonly": "A", "customers_note_audit": "O"}
    rules = tmp_path / "rules.yaml"
    rules.write_text(devnode.rules_configmap()["data"]["rules.yaml"])
    assert yaml.safe_load(rules.read_text()) == devdata.MASKING_RULES
    env = {
        **secret_env(dsn),
        "DATAJOBS_MASKING_RULES": str(rules),
        "DATAJOBS_KIND": "MaskingExecution",
        "DATAJOBS_JOB_ID": "167",
        "DATAJOBS_EXECUTION_ID": "1",
    }
    run = run_worker("masking", env)
    assert run.wait() == 0, run.log()
    report = run.report()
    assert report["status"] == "SUCCEEDED", report
    assert report["rowsMasked"] == report["rowsTotal"] == 900
    assert report["restored"] == report["disabled"] and report["leftDisabled"] == []
    assert trigger_states(dsn) == before
    with psycopg.connect(dsn) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM customers").fetchall()]
        dangling = conn.execute(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.email = o.customer_email"
            " WHERE c.id IS NULL"
        ).fetchone()
    assert len(emails) == 600 and not [e for e in emails if re.match(r"^Customer\.\d{7}\.account@", e)]
    assert dangling == (0,), "orders still reference their (masked) customers"
